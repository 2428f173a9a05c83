#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: the five WCT decoders (Li et al. 2017) at full width, 256 px
# crops, batch 8, lr 1e-4, bf16 autocast, 30,000 steps (STEPS=N; the card records the steps trained),
# on all photos of ../shared/data/content. Usage:
#
#   bash recipes/wct-gpu.sh
#
# Writes brushwork/models/weights/wct.safetensors (fp16, card recipe "wct-gpu"), replacing a
# CPU-trained one; runs/wct-gpu/wct/ resumes when run again.
# INIT=MODEL continues MODEL (such as the shipped one) instead of starting from noise: its
# architecture, a lower learning rate and no style ramp (lib.sh, gpu_start_point).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

# shellcheck source=recipes/lib.sh
source recipes/lib.sh
DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-30000}
RECIPE=wct-gpu
MODEL=${MODEL:-brushwork/models/weights/wct.safetensors}
RUN=${RUN:-runs/$RECIPE/wct}
# DECODER_WIDTH=0.5: a quarter of the weights (10 MB in fp16 instead of 42), as recipes/gpu-window.sh trains it.

gpu_flags
gpu_start_point 1e-4
train_resumable "$RECIPE" "$RUN" --kind wct-decoders --data "$DATA" \
  -o "$MODEL" --name wct --recipe "$RECIPE" --save-precision fp16 \
  --image-size 256 --batch-size 8 --steps "$STEPS" --decoder-width "${DECODER_WIDTH:-1.0}" \
  --content-weight 1 \
  "${START_FLAGS[@]}" "${GPU_FLAGS[@]}"
exit
}
