#!/usr/bin/env bash
# Reduced-scale recipe for the CPU: one multi-style network (conditional instance norm) for ten of the
# shared paintings, about 25 minutes on one core. Usage:
#
#   bash recipes/multi-cpu.sh
#
# Writes brushwork/models/weights/multi-paintings.safetensors (fp16, card recipe "multi-cpu"; its styles
# are selected with `brushwork stylize IN --model multi-paintings --style NAME`). Logs, previews and
# checkpoints go to runs/multi-cpu/; running the script again resumes from the last checkpoint; an
# existing model is kept unless FORCE=1 (so a GPU-trained one is never replaced by this recipe).
#
# How: the feed-forward CPU recipe's lessons (see feedforward-cpu.sh) carry over unchanged: one thread,
# start from the reconstruction network of stage 0 (recipes/reconstruct-cpu.sh; --init copies its one
# norm row into every style's row), lr 1e-3 warmed up over 50 steps, style weight 10 ramped in over 100
# steps, Gram targets at 256 px for 128 px crops, width 16. A batch of 4 photos trains 4 styles
# (round robin), so in 480 steps each style sees ~190 photo-style pairs against 1,600 for a
# single-style CPU model: expect weaker styles than the single-style models until the GPU recipe runs.
# Sizing: 5 timed steps took ~3.0 s each on one thread with the other core busy (~15 s of start-up
# for ten Gram targets): 480 steps ~ 24 min. STEPS=N changes it.
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-480}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python3}
RECIPE=multi-cpu
NAME=${NAME:-multi-paintings}
# The six single-style models' paintings (for the benchmark's comparison) and four more.
STYLES=${STYLES:-starry-night,great-wave,the-scream,composition-vii,udnie,woman-with-a-hat,bedroom-in-arles,shipwreck-of-the-minotaur,charing-cross-bridge,van-doesburg}

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON
source recipes/lib.sh
cpu_start_point  # sets init, STYLE_RAMP, LR and seed: stage 0, or INIT=MODEL to continue a trained model

train_model "$RECIPE" "$NAME" 1 --kind multi --styles "$STYLES" --data "$DATA" --init "$init" \
  --image-size 128 --batch-size 4 --width 16 --num-residual 5 --device cpu --precision "${PRECISION:-auto}" \
  --threads "$THREADS" --seed "$seed" --steps "$STEPS" --learning-rate "$LR" --warmup-steps 50 \
  --style-weight 10 --style-ramp "$STYLE_RAMP" --style-size 256 \
  --log-every 10 --preview-every 50 --checkpoint-every 25 -q
exit
}
