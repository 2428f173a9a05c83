#!/usr/bin/env bash
# Reduced-scale recipe for the CPU: the five WCT decoders (Li et al. 2017, relu1_1 ... relu5_1),
# trained to reconstruct photos, in one run and one model file: about 20 minutes on one core. Usage:
#
#   bash recipes/wct-cpu.sh
#
# Writes brushwork/models/weights/wct.safetensors (fp16, card recipe "wct-cpu"), which
# `brushwork stylize --method wct` uses. No style image is used in training, so every painting is
# "held out". Logs, previews (the five reconstructions side by side) and checkpoints go to
# runs/wct-cpu/wct/; running the script again resumes. An existing model is kept (FORCE=1 retrains).
#
# How (sized on this machine: 2 cores shared with other training, torch 2.13, fp32, one thread):
# half-width decoders (--decoder-width 0.5), 128 px crops, batch 2. One step runs VGG-19 to relu5_1
# on the photos, then each decoder and VGG-19 again up to its layer, forward and backward: measured
# ~4.2 s per step (5 steps), so 280 steps take ~20 minutes. lr 1e-3 warmed up over 25 steps.
# STEPS=N sets the steps; THREADS=N the threads; TIME_LIMIT=SECONDS stops earlier and still writes the
# model; LR=X the peak learning rate (default 1e-3).
# Continuing the decoders (INIT=MODEL, e.g. the shipped wct.safetensors with FORCE=1 and MODEL= elsewhere):
# the learning rate is constant after the warm-up, so the default 1e-3 continues at the rate they were
# trained at; the warm-up restarts the fresh Adam state gently.
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

# shellcheck source=recipes/lib.sh
source recipes/lib.sh
DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-280}
THREADS=${THREADS:-1}
RECIPE=wct-cpu
MODEL=${MODEL:-brushwork/models/weights/wct.safetensors}
RUN=${RUN:-runs/$RECIPE/wct}
INIT=${INIT:-}
LR=${LR:-1e-3}

keep_trained "$RECIPE" "$MODEL"
# Assigned before training so that a bad INIT stops the recipe with its one-line error; a continuation
# draws its own batches (start_seed).
seed=$(start_seed "$INIT")
train_resumable "$RECIPE" "$RUN" --kind wct-decoders --data "$DATA" \
  -o "$MODEL" --name wct --recipe "$RECIPE" --save-precision fp16 \
  --image-size 128 --batch-size 2 --steps "$STEPS" --decoder-width 0.5 \
  --learning-rate "$LR" --warmup-steps 25 --content-weight 1 \
  --device cpu --precision "${PRECISION:-auto}" --threads "$THREADS" --seed "$seed" \
  --log-every 10 --preview-every 50 --checkpoint-every 25 -q ${INIT:+--init "$INIT"} ${TIME_LIMIT:+--time-limit "$TIME_LIMIT"}
exit
}
