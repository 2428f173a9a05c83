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
# How (measured on this machine: 2 cores shared with other work, Xeon @ 2.8 GHz, torch 2.13, fp32,
# no native bf16):
# - One thread (--threads 1). With the cores shared, torch's two OpenMP threads wait on each other at
#   every op: a step took 4x longer with 2 threads than with 1.
# - A shared start. A fresh network's style loss is so large that it drowns the content loss, and in
#   a few hundred steps a network trained from random weights learns a texture with no subject (tried:
#   style weights 3-30, with and without a style ramp, batch 1 and 4). So stage 0 trains, once, a
#   network to reproduce photos (--style-weight 0, so VGG runs only to relu2_2: cheap), and every
#   style starts from it (--init), as `optimize` starts from the photo. Stage 0: 400 steps, ~12 min.
# - Per style: the light network (width 16), 128 px crops, batch 4, 400 steps (1,600 photos), about
#   2-3 s per step: about 15 minutes. Fine-tuning, not training: lr 1e-3 warmed up over 50 steps
#   (a fresh Adam's first steps move every weight by ~lr, which wrecked the reconstruction at 2e-3
#   within 10 steps) and the style weight ramped in over the first 100 steps. Style weight 10, not
#   the default 30: in so short a run 30 turned The Starry Night into outlines and dark blots; 10 is
#   where `optimize` keeps the subject under clear strokes.
#   Style Gram targets at 256 px, twice the crop (Johnson used 1x): at 512 px (4x the crop) the deep
#   layers' statistics describe shapes as large as a whole crop, and the network painted dark blots.
# STEPS=N sets the per-style steps; THREADS=N the threads.
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-400}
INIT_STEPS=${INIT_STEPS:-400}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python3}
RECIPE=feedforward-cpu
if [ "$#" -gt 0 ]; then STYLES=("$@"); else
  STYLES=(starry-night great-wave the-scream composition-vii udnie woman-with-a-hat)
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
COMMON=(--kind feedforward --data "$DATA" --recipe "$RECIPE" --image-size 128 --batch-size 4 --learning-rate 2e-3
        --width 16 --num-residual 5 --style-size 512 --device cpu --precision "${PRECISION:-auto}" --threads "$THREADS" --seed 0)

# Stage 0, once: a network that reproduces photos (not shipped; the start of every style).
init="runs/$RECIPE/reconstruct.safetensors"
DATA="$DATA" INIT_STEPS="$INIT_STEPS" THREADS="$THREADS" PYTHON="$PYTHON" bash recipes/reconstruct-cpu.sh

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
  "$PYTHON" -m brushwork.cli train "${COMMON[@]}" --style "$style" --init "$init" \
    -o "$out" --name "$style" --save-precision fp16 --run-dir "$run" "${resume[@]}" \
    --steps "$STEPS" --learning-rate 1e-3 --warmup-steps 50 --style-weight 10 --style-ramp 100 --style-size 256 \
    --log-every 10 --preview-every 50 --checkpoint-every 25 -q
  echo "[$RECIPE] $style: done in $(( $(date +%s) - start )) s ($(date -Is))"
done
exit
}
