#!/usr/bin/env bash
# Stage 0 of every CPU recipe (feedforward-cpu, multi-cpu), run once: a light network
# (width 16, 5 residual blocks) trained to reproduce photos (--style-weight 0, so VGG runs only to
# relu2_2: cheap), 400 steps (INIT_STEPS) of 128 px crops, ~10-12 min on one thread. Not shipped;
# every CPU-trained style network starts from it (--init), as `optimize` starts from the photo
# (see feedforward-cpu.sh for why). Writes runs/feedforward-cpu/reconstruct.safetensors, resumes an
# interrupted run, and does nothing when the file exists.
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
INIT_STEPS=${INIT_STEPS:-400}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python3}
RECIPE=feedforward-cpu
init="runs/$RECIPE/reconstruct.safetensors"
[ -f "$init" ] && exit 0

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
resume=()
if compgen -G "runs/$RECIPE/reconstruct/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
echo "[$RECIPE] stage 0: reconstruction network ${resume[*]:-from scratch} ($(date -Is))"
start=$(date +%s)
"$PYTHON" -m brushwork.cli train --kind feedforward --data "$DATA" --recipe "$RECIPE" --image-size 128 \
  --batch-size 4 --learning-rate 2e-3 --width 16 --num-residual 5 --style-size 512 --device cpu --precision "${PRECISION:-auto}" \
  --threads "$THREADS" --seed 0 --style starry-night --style-weight 0 \
  -o "$init" --name reconstruct --run-dir "runs/$RECIPE/reconstruct" "${resume[@]}" \
  --steps "$INIT_STEPS" --log-every 25 --preview-every 100 --checkpoint-every 100 -q
echo "[$RECIPE] stage 0: done in $(( $(date +%s) - start )) s ($(date -Is))"
exit
}
