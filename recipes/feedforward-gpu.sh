#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: one feed-forward style network per style (Johnson et al.'s
# setting: 256 px crops, 40,000 steps, here batch 8 and bf16 autocast), on all 2,602 photos of
# ../shared/data/content. Usage:
#
#   bash recipes/feedforward-gpu.sh [STYLE ...]      # default: the six shipped styles
#
# Writes brushwork/models/weights/STYLE.safetensors (fp16, card recipe "feedforward-gpu"),
# replacing CPU-trained models. Runs in runs/feedforward-gpu/STYLE/ resume from their last
# checkpoint when the script is run again. STEPS=N shortens a run (a GPU session's time is limited;
# the card records the steps actually trained).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-40000}
PYTHON=${PYTHON:-python3}
RECIPE=feedforward-gpu
if [ "$#" -gt 0 ]; then STYLES=("$@"); else
  STYLES=(starry-night great-wave the-scream composition-vii udnie woman-with-a-hat)
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
source recipes/lib.sh
gpu_flags
for style in "${STYLES[@]}"; do
  out="${WEIGHTS_DIR:-brushwork/models/weights}/$style.safetensors"
  run="runs/$RECIPE/$style"
  resume=()
  if compgen -G "$run/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
  echo "[$RECIPE] $style: training ${resume[*]:-from scratch} ($(date -Is))"
  start=$(date +%s)
  "$PYTHON" -m brushwork.cli train \
    --kind feedforward --style "$style" --data "$DATA" -o "$out" --name "$style" \
    --recipe "$RECIPE" --save-precision fp16 --run-dir "$run" "${resume[@]}" \
    --image-size 256 --batch-size 8 --steps "$STEPS" --learning-rate 1e-3 \
    --width 32 --num-residual 5 --style-size 512 \
    "${GPU_FLAGS[@]}"
  echo "[$RECIPE] $style: done in $(( $(date +%s) - start )) s ($(date -Is))"
done
