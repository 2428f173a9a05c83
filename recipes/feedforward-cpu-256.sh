#!/usr/bin/env bash
# Stage 2 of the CPU recipe for feed-forward style networks: continue a trained network on 256 px crops
# against the benchmark's own objective (relu4_2 content; Gram style over relu1_1..relu5_1 with targets
# at 512 px, the size the benchmark measures at). Usage:
#
#   INIT=MODEL bash recipes/feedforward-cpu-256.sh STYLE
#
# INIT is a trained network of STYLE (a shipped name such as `starry-night`, or a file). Writes
# WEIGHTS_DIR/STYLE.safetensors (default WEIGHTS_DIR=runs/feedforward-cpu-256/candidates, fp16, card
# recipe "feedforward-cpu-256", card "init" naming INIT): a candidate, measured with
#   python benchmarks/feedforward_quality.py --models STYLE --candidates WEIGHTS_DIR/STYLE.safetensors
# before it replaces the shipped model (WEIGHTS_DIR=brushwork/models/weights writes there directly).
# Logs, previews and checkpoints in runs/feedforward-cpu-256/STYLE/; running again resumes.
#
# Why (measured, README "Feed-forward quality"): 128 px crops never moved the 512 px style metric, which
# is ~95% relu4_1, a layer whose receptive field is about a whole 128 px crop; 540 steps on 256 px crops
# against 512 px targets cut udnie's 512 px style loss 4-6x. At the metric's own style weight (50) that
# network lost its subject (content 2.4x optimize's), so this recipe weighs style STYLE_WEIGHT=15.
# Sizing: ~11 s per step (batch 4, one thread, the other core busy): TIME_LIMIT=SECONDS (default 5700)
# stops the run and still writes the model; STEPS (default 2000) is only an upper bound.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -ne 1 ] || [ -z "${INIT:-}" ]; then
  echo "usage: INIT=MODEL bash recipes/feedforward-cpu-256.sh STYLE" >&2
  exit 2
fi
STYLE=$1
DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python3}
STYLE_WEIGHT=${STYLE_WEIGHT:-15}
RECIPE=feedforward-cpu-256
export WEIGHTS_DIR=${WEIGHTS_DIR:-runs/$RECIPE/candidates}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON
source recipes/lib.sh
mkdir -p "$WEIGHTS_DIR"

# shellcheck disable=SC2046
train_model "$RECIPE" "$STYLE" 0 --kind feedforward --style "$STYLE" --data "$DATA" --init "$INIT" \
  $(model_arch_flags "$INIT") --image-size 256 --batch-size 4 --device cpu --precision fp32 \
  --threads "$THREADS" --seed 0 --steps "$STEPS" --time-limit "${TIME_LIMIT:-5700}" \
  --learning-rate 3e-4 --warmup-steps 50 --style-weight "$STYLE_WEIGHT" --style-ramp 0 --tv-weight 0 \
  --content-layers relu4_2 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-size 512 \
  --log-every 10 --preview-every 100 --checkpoint-every 25 -q
