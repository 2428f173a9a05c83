#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: one feed-forward style network per style (Johnson et al.'s
# training setting: 256 px crops, 40,000 steps, here batch 8 and bf16 autocast, against the benchmarks'
# objective, below), on all 2,602 photos of ../shared/data/content. Usage:
#
#   bash recipes/feedforward-gpu.sh [STYLE ...]      # default: the six shipped styles
#
# Writes brushwork/models/weights/STYLE.safetensors (fp16, card recipe "feedforward-gpu"),
# replacing CPU-trained models. Runs in runs/feedforward-gpu/STYLE/ resume from their last
# checkpoint when the script is run again. STEPS=N shortens a run (a rented GPU's time is limited;
# the card records the steps actually trained). INIT=shipped continues each style's shipped model
# instead of starting from noise (its width, lr at most 3e-4, no style ramp: lib.sh, gpu_start_point).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
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
# The objective: the benchmarks' own (lib.sh, metric_loss_flags: optimize's layers, Gram targets at 512 px,
# style weight STYLE_WEIGHT=15), which the shipped udnie and starry-night were continued against on the
# CPU (feedforward-cpu-256.sh: style loss 64x -> 10x and 67x -> 20x optimize's). OBJECTIVE=johnson trains
# against `brushwork train`'s defaults instead (Johnson et al.'s layers: relu2_2 content, relu1_2..relu4_3
# style, weight 30; this recipe's objective before), Gram targets at 512 px, its models named STYLE-johnson.
metric_loss_flags
SUFFIX=
if [ "${OBJECTIVE:-metric}" = johnson ]; then
  LOSS_FLAGS=(--style-size 512)
  SUFFIX=-johnson
elif [ "${OBJECTIVE:-metric}" != metric ]; then
  echo "OBJECTIVE must be metric or johnson, not $OBJECTIVE" >&2
  exit 2
fi
for style in "${STYLES[@]}"; do
  # INIT=shipped: each style continues its own shipped model (lib.sh, gpu_start_point).
  style_init=${INIT:-}
  if [ "$style_init" = shipped ]; then style_init=brushwork/models/weights/$style.safetensors; fi
  INIT=$style_init gpu_start_point 1e-3
  out="${WEIGHTS_DIR:-brushwork/models/weights}/$style$SUFFIX.safetensors"
  run="runs/$RECIPE/$style$SUFFIX"
  resume=()
  if compgen -G "$run/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
  start_from="from scratch"
  if [ -n "${resume[*]}" ]; then start_from="--resume"; elif [ -n "$style_init" ]; then start_from="from $style_init"; fi
  echo "[$RECIPE] $style: training $start_from ($(date -Is))"
  start=$(date +%s)
  "$PYTHON" -m brushwork.cli train \
    --kind feedforward --style "$style" --data "$DATA" -o "$out" --name "$style$SUFFIX" "${LOSS_FLAGS[@]}" \
    --recipe "$RECIPE" --save-precision fp16 --run-dir "$run" "${resume[@]}" \
    --image-size 256 --batch-size 8 --steps "$STEPS" \
    --width 32 --num-residual 5 \
    "${START_FLAGS[@]}" "${GPU_FLAGS[@]}"
  echo "[$RECIPE] $style: done in $(( $(date +%s) - start )) s ($(date -Is))"
done
exit
}
