#!/usr/bin/env bash
# Reduced-scale recipe for the CPU: one feed-forward style network per style, about 15 minutes each
# on 2 CPU cores (measured; see the sizing note below). Usage:
#
#   bash recipes/feedforward-cpu.sh [STYLE ...]      # default: the six shipped styles
#
# Writes brushwork/models/weights/STYLE.safetensors (fp16, card recipe "feedforward-cpu") as each
# style finishes, so partial progress is usable. Logs, previews and checkpoints go to
# runs/feedforward-cpu/STYLE/; running the script again resumes an unfinished style from its last
# checkpoint and skips styles that already have a model (FORCE=1 retrains; a model made by the GPU
# recipe is never replaced by this one unless FORCE=1).
#
# Sizing (measured with the trainer on this machine: 2 cores shared with other work, Xeon @ 2.8 GHz,
# torch 2.13, fp32, no native bf16): the light network (width 16) on 128 px crops at batch 4 takes
# 3-9 s per step (VGG-19 to relu4_3 forward and backward dominates), so 200 steps (800 photos, about
# a third of an epoch) fill 10-30 minutes depending on the load. That is a tiny fraction of a full
# run, so the learning rate is raised to 2e-3 to get the most out of it. Style Gram targets at 512 px
# fix the stroke scale for stylizing photos of around 512-1024 px. STEPS=N changes the length.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-200}
PYTHON=${PYTHON:-python3}
RECIPE=feedforward-cpu
if [ "$#" -gt 0 ]; then STYLES=("$@"); else
  STYLES=(starry-night great-wave the-scream composition-vii udnie woman-with-a-hat)
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
for style in "${STYLES[@]}"; do
  out="brushwork/models/weights/$style.safetensors"
  run="runs/$RECIPE/$style"
  if [ -f "$out" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "[$RECIPE] $style: $out exists, skipping (FORCE=1 to retrain)"
    continue
  fi
  resume=()
  if compgen -G "$run/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
  echo "[$RECIPE] $style: training ${resume[*]:-from scratch} ($(date -Is))"
  start=$(date +%s)
  "$PYTHON" -m brushwork.cli train \
    --kind feedforward --style "$style" --data "$DATA" -o "$out" --name "$style" \
    --recipe "$RECIPE" --save-precision fp16 --run-dir "$run" "${resume[@]}" \
    --image-size 128 --batch-size 4 --steps "$STEPS" --learning-rate 2e-3 \
    --width 16 --num-residual 5 --style-size 512 \
    --device cpu --precision fp32 --seed 0 \
    --log-every 10 --preview-every 50 --checkpoint-every 25
  echo "[$RECIPE] $style: done in $(( $(date +%s) - start )) s ($(date -Is))"
done
