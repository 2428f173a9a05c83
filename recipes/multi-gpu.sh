#!/usr/bin/env bash
# Full-scale recipe for a CUDA GPU: the multi-style network (conditional instance norm) for the ten
# paintings of multi-cpu.sh, in the feed-forward GPU recipe's setting (256 px crops, batch 8, bf16,
# width 32, the benchmarks' objective: lib.sh, metric_loss_flags), from random weights. 80,000 steps of 8 photos (STEPS=N): each of
# the ten styles sees 64,000 photo-style pairs, a fifth of the single-style GPU recipe's 320,000 (the
# shared convolutions learn from every style at once; only the norm rows are per style). Usage:
#
#   bash recipes/multi-gpu.sh
#
# Writes brushwork/models/weights/multi-paintings.safetensors (fp16, card recipe "multi-gpu"),
# replacing a CPU-trained one; resumes from runs/multi-gpu/ when run again.
# INIT=MODEL continues MODEL (such as the shipped one) instead of starting from noise: its
# architecture, a lower learning rate and no style ramp (lib.sh, gpu_start_point).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-80000}
PYTHON=${PYTHON:-python3}
RECIPE=multi-gpu
NAME=${NAME:-multi-paintings}
STYLES=${STYLES:-starry-night,great-wave,the-scream,composition-vii,udnie,woman-with-a-hat,bedroom-in-arles,shipwreck-of-the-minotaur,charing-cross-bridge,van-doesburg}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON
source recipes/lib.sh
gpu_flags
gpu_start_point 1e-3
metric_loss_flags
train_model "$RECIPE" "$NAME" 0 --kind multi --styles "$STYLES" --data "$DATA" \
  --image-size 256 --batch-size 8 --steps "$STEPS" --style-ramp 1000 \
  --width 32 --num-residual 5 "${LOSS_FLAGS[@]}" \
  "${START_FLAGS[@]}" "${GPU_FLAGS[@]}"
exit
}
