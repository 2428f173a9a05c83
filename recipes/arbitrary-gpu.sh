#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: the arbitrary-style model (style-prediction network + one
# transformation network, trained jointly) on 14 of the bundled paintings (four held out: starry-night-over-the-rhone, water-lilies, mondrian-composition, in-bed) plus training
# photos as styles, in the feed-forward GPU recipe's setting: 256 px crops, batch 8, bf16, width 32,
# 512 px style crops, 100,000 steps (STEPS=N), from random weights with the style ramped in over
# 2,000 steps. Usage:
#
#   bash recipes/arbitrary-gpu.sh
#
# Writes brushwork/models/weights/arbitrary.safetensors (fp16, card recipe "arbitrary-gpu"), to compare
# with the built-in magenta-arbitrary (benchmarks/any_style.py); resumes from runs/arbitrary-gpu/ when run
# again.
# INIT=MODEL continues MODEL (such as the shipped one) instead of starting from noise: its
# architecture, a lower learning rate and no style ramp (lib.sh, gpu_start_point).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-100000}
PYTHON=${PYTHON:-python3}
RECIPE=arbitrary-gpu
NAME=${NAME:-arbitrary}
STYLES=${STYLES:-bedroom-in-arles,charing-cross-bridge,composition-vii,degas-dance-foyer,great-wave,renoir-landscape,san-giorgio-maggiore,shipwreck-of-the-minotaur,starry-night,the-scream,udnie,van-doesburg,van-gogh-self-portrait,woman-with-a-hat}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON
source recipes/lib.sh
# lr 3e-4: at 1e-3 the CPU recipe's predictor diverged (black images for every style); a GPU rented for
# a short window has no time to find that out there.
gpu_flags
gpu_start_point 3e-4
train_model "$RECIPE" "$NAME" 0 --kind arbitrary --styles "$STYLES" --data "$DATA" \
  --image-size 256 --batch-size 8 --steps "$STEPS" --style-ramp 2000 \
  --width 32 --num-residual 5 --style-size 512 --photo-styles 0.25 --embedding-size 100 \
  "${START_FLAGS[@]}" "${GPU_FLAGS[@]}"
exit
}
