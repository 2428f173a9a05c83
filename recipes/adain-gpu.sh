#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: the AdaIN decoder at Huang and Belongie's setting (full-width
# decoder, photos cropped to 256 px, styles resized to 512 px and cropped to 256 px, batch 8,
# lr 1e-4, style weight 10), bf16 autocast. Huang trained 160,000 steps; the default here is 40,000
# (STEPS=N; a rented GPU's time is limited, and the card records the steps actually trained).
#
#   bash recipes/adain-gpu.sh
#
# Writes brushwork/models/weights/adain.safetensors (fp16, card recipe "adain-gpu"), replacing a
# CPU-trained one. The held-out paintings of recipes/lib.sh (HELD_OUT) are excluded from training. runs/adain-gpu/adain/ resumes when run again.
# INIT=MODEL continues MODEL (such as the shipped one) instead of starting from noise: its
# architecture, a lower learning rate and no style ramp (lib.sh, gpu_start_point).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

# shellcheck source=recipes/lib.sh
source recipes/lib.sh
DATA=${DATA:-../shared/data/content}
STYLE_SOURCE=${STYLE_SOURCE:-$PRESET_STYLES}
STEPS=${STEPS:-40000}
RECIPE=adain-gpu
MODEL=${MODEL:-brushwork/models/weights/adain.safetensors}
RUN=${RUN:-runs/$RECIPE/adain}

link_training_styles "$STYLE_SOURCE" "$RUN.styles"
gpu_flags
gpu_start_point 1e-4
train_resumable "$RECIPE" "$RUN" --kind adain --data "$DATA" --styles "$RUN.styles" \
  -o "$MODEL" --name adain --recipe "$RECIPE" --save-precision fp16 \
  --image-size 256 --style-size 512 --batch-size 8 --steps "$STEPS" --decoder-width 1.0 \
  --content-weight 1 --style-weight 10 \
  "${START_FLAGS[@]}" "${GPU_FLAGS[@]}"
exit
}
