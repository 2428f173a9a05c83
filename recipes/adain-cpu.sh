#!/usr/bin/env bash
# Reduced-scale recipe for the CPU: the AdaIN decoder (Huang and Belongie 2017), about 25 minutes on
# one core. Usage:
#
#   bash recipes/adain-cpu.sh
#
# Writes brushwork/models/weights/adain.safetensors (fp16, card recipe "adain-cpu"), which
# `brushwork stylize --method adain` (and --method auto, for a style that has no trained model) uses.
# Logs, previews and checkpoints go to runs/adain-cpu/adain/; running the script again resumes an
# unfinished run from its last checkpoint. An existing model is kept (FORCE=1 retrains), so a
# GPU-trained decoder is never replaced by this one.
#
# Held-out paintings: starry-night-over-the-rhone, water-lilies, mondrian-composition and in-bed are
# NOT trained on (the same four as the arbitrary-style model's): the decoder sees the other
# 14 paintings of the style presets, brushwork/assets/styles (linked into runs/adain-cpu/adain.styles/; the list is in recipes/lib.sh), and
# benchmarks/arbitrary.py measures it on the four held-out ones.
#
# How (sized on this machine: 2 cores shared with other training, Xeon @ 2.8 GHz, torch 2.13, fp32):
# - One thread (--threads 1): on shared cores torch's OpenMP threads wait on each other at every op.
# - A light decoder (--decoder-width 0.5: a quarter of the full decoder's work); VGG-19 up to relu4_1
#   runs three times per step (photos, style crops, decoded images) and dominates the cost.
# - 128 px photo crops, style images resized to 256 px on the short side and cropped to 128 px
#   (Huang: 512 -> 256; halved for the CPU), batch 4. Measured: 3.0-3.6 s per step (5 steps, twice), so 450
#   steps take ~25 minutes.
# - Style weight 10 (Huang's lambda), content weight 1; lr 1e-3 with a 25-step warm-up: a short run
#   needs a larger step than Huang's 1e-4.
# - It starts from the relu4_1 decoder of the shipped WCT model (--init wct; INIT= to start from noise, or
#   INIT=MODEL): AdaIN's decoder is the same network, and WCT's is trained to invert the encoder. From
#   noise, 450 steps left a decoder whose output kept no trace of the photo. So run recipes/wct-cpu.sh first.
# - Continuing a decoder (INIT=MODEL, e.g. the shipped adain.safetensors with FORCE=1 and MODEL= elsewhere):
#   LR=3e-4, as the style-network recipes use for continuation (a fresh Adam state at 1e-3 throws a
#   trained network off for tens of steps).
# STEPS=N sets the steps; TIME_LIMIT=SECONDS stops earlier and still writes the model; THREADS=N the threads; LR=X the peak learning rate (default 1e-3).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

# shellcheck source=recipes/lib.sh
source recipes/lib.sh
DATA=${DATA:-../shared/data/content}
STYLE_SOURCE=${STYLE_SOURCE:-$PRESET_STYLES}
STEPS=${STEPS:-450}
THREADS=${THREADS:-1}
RECIPE=adain-cpu
MODEL=${MODEL:-brushwork/models/weights/adain.safetensors}
RUN=${RUN:-runs/$RECIPE/adain}
INIT=${INIT-wct}
LR=${LR:-1e-3}

keep_trained "$RECIPE" "$MODEL"
# Assigned before training so that a bad INIT stops the recipe with its one-line error; a continuation
# draws its own batches (start_seed).
seed=$(start_seed "$INIT")
link_training_styles "$STYLE_SOURCE" "$RUN.styles"
train_resumable "$RECIPE" "$RUN" --kind adain --data "$DATA" --styles "$RUN.styles" \
  -o "$MODEL" --name adain --recipe "$RECIPE" --save-precision fp16 \
  --image-size 128 --style-size 256 --batch-size 4 --steps "$STEPS" --decoder-width 0.5 \
  --learning-rate "$LR" --warmup-steps 25 --content-weight 1 --style-weight 10 \
  --device cpu --precision "${PRECISION:-auto}" --threads "$THREADS" --seed "$seed" \
  --log-every 10 --preview-every 50 --checkpoint-every 25 -q ${INIT:+--init "$INIT"} ${TIME_LIMIT:+--time-limit "$TIME_LIMIT"}
exit
}
