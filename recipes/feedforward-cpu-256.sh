#!/usr/bin/env bash
# Stage 2 of the CPU recipes for style networks, single- or multi-style: continue a trained network on
# 256 px crops against the benchmark's own objective (relu4_2 content; Gram style over relu1_1..relu5_1
# with targets at 512 px, the size the benchmarks measure at). Usage:
#
#   INIT=MODEL bash recipes/feedforward-cpu-256.sh NAME
#
# INIT is a trained network: a single-style one of the preset NAME (a shipped name such as
# `starry-night`, or a file), or a multi-style one (such as `multi-paintings`), which keeps its styles
# (4 of them per step, round robin, as in multi-cpu.sh) and is written as NAME. Writes
# WEIGHTS_DIR/NAME.safetensors (default WEIGHTS_DIR=runs/feedforward-cpu-256/candidates, fp16, card
# recipe "feedforward-cpu-256", card "init" naming INIT): a candidate, measured with
#   python benchmarks/feedforward_quality.py --models NAME --candidates WEIGHTS_DIR/NAME.safetensors
# (a multi-style candidate: python benchmarks/multi.py --multi WEIGHTS_DIR/NAME.safetensors)
# before it replaces the shipped model (WEIGHTS_DIR=brushwork/models/weights writes there directly).
# Logs, previews and checkpoints in runs/feedforward-cpu-256/NAME/; running again resumes.
#
# Why (measured, docs/training-history.md): 128 px crops never moved the 512 px style metric, which
# is ~95% relu4_1, a layer whose receptive field is about a whole 128 px crop; 540 steps on 256 px crops
# against 512 px targets cut udnie's 512 px style loss 4-6x. At the metric's own style weight (50) that
# network lost its subject (content 2.4x optimize's), so this recipe weighs style STYLE_WEIGHT=15.
# Sizing: 5.8-12.9 s per step in fp32 by machine, about 2-3.6 s in bf16 on the AMX Xeon (batch 4, one thread,
# the other core busy; docs/training-history.md): 1,600-2,800 steps in the default TIME_LIMIT there.
# TIME_LIMIT=SECONDS (default 5700) stops the run and still writes the model; STEPS (default 4000) is only an upper bound.
# The seed is INIT's trained steps (lib.sh, start_seed): each continuation of a model draws its
# own photo order and crops instead of repeating the last run's. SEED=N overrides it.
# LEARNING_RATE (default 3e-4): Adam's rate, constant after the warm-up; a network that no longer improves
# at 3e-4 may be continued at a lower rate (the noise of a step's update shrinks with it).
# EMA_DECAY (default 0: off): --ema-decay, the model written is a moving average of the weights. Why: the
# plain average of the multi-style model and its continuation 516 steps later had style losses 1.5-4.8%
# below the midpoint of the two models' on five of the six measured styles, 0.4% above on the sixth (docs/
# training-history.md, the multi-style model): part of the spread between continuations is step noise, which an average removes. On
# its first four runs (2026-12-01) the average was behind the last trained weights on six of nine measured
# style losses, by up to 21% (the runs still improve when they stop, and the average lags): off by default.
# But continue a model that is itself an average with EMA_DECAY=0.99: from woman-with-a-hat's averaged
# model, three runs without one all measured worse than it, the one with one better (2026-12-02).
# Starry-night's first run with one (seed 2,920) was shipped, its run without one (seed 2,919) was not;
# the shipped run had twice the steps (1,138 against 528, a faster machine), so the average's share in that
# is not separated from the steps' (training round 22, 2026-12-02).
# CLIP_GRADIENT (default 5): --clip-gradient, a step's gradient is scaled down to at most 5x the running
# average of its norm (~100 steps). Why: woman-with-a-hat's run from its shipped model (seed 2,483) jumped
# from a style loss of ~23k to 55-81k at steps 431-460, twice, bit for bit (2026-12-01 and 2026-12-02);
# the second time the log showed one step's gradient norm at 41x the running average (4.97e8), where over
# 900 other steps of two runs (starry-night's too) no step passed 3.8x but one at 7.6x (a smaller bump in
# the loss, recovered). Resumed from the step-425 checkpoint with clipping at 5 (the spike alone clipped),
# its style loss stayed at 24-38k and its model measured 18.5x / 14.8x optimize's style loss, against
# 31.4x / 26.1x unclipped (docs/training-history.md). 0 turns it off.
# KEEP_CHECKPOINTS (default 20): checkpoints kept, every 25 steps: the last 500 steps (a 100-minute run in fp32; a quarter of one in bf16).
# Why: woman-with-a-hat's run of 2026-12-01 jumped from a style loss of ~23k to 55-81k in its last 40 steps,
# and with the trainer's default of 2 both kept checkpoints came after the jump; nothing was left to ship.
# A checkpoint is 5 MB; recipes/model_from_checkpoint.py writes a model from any of them.
# RUN_LABEL=LABEL (lib.sh, train_model): the run's folder and file are LABEL, the model still NAME: two runs forked
# from one model side by side (SEED= apart), measured apart or averaged by recipes/average_models.py.
# PRECISION (default auto): bf16 autocast on a CPU with native bf16, fp32 elsewhere; why, in lib.sh.
# TRAIN_STYLES=a,b and NORM_ONLY=1, for a multi-style INIT (lib.sh, partial_training_flags): train only
# those styles, and only their norm rows, leaving the model's other styles exactly as they were.
# STYLE_REPEAT=a:3,b:2 (same place): every style still trained, the named ones drawn 3 and 2 times as often.
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

if [ "$#" -ne 1 ] || [ -z "${INIT:-}" ]; then
  echo "usage: INIT=MODEL bash recipes/feedforward-cpu-256.sh NAME" >&2
  exit 2
fi
NAME=$1
DATA=${DATA:-../shared/data/content}
STEPS=${STEPS:-4000}
LEARNING_RATE=${LEARNING_RATE:-3e-4}
EMA_DECAY=${EMA_DECAY:-0}
KEEP_CHECKPOINTS=${KEEP_CHECKPOINTS:-20}
CLIP_GRADIENT=${CLIP_GRADIENT:-5}
THREADS=${THREADS:-1}
PYTHON=${PYTHON:-python3}
RECIPE=feedforward-cpu-256
export WEIGHTS_DIR=${WEIGHTS_DIR:-runs/$RECIPE/candidates}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON
source recipes/lib.sh
metric_loss_flags  # LOSS_FLAGS; STYLE_WEIGHT= (default 15)
partial_training_flags  # PARTIAL_FLAGS; TRAIN_STYLES=, NORM_ONLY=
mkdir -p "$WEIGHTS_DIR"

# Assigned first so that a bad INIT (missing, or not a style network) stops the recipe with its message.
style_flags=$(model_style_flags "$INIT" "$NAME")
seed=$(start_seed "$INIT")
# shellcheck disable=SC2086
train_model "$RECIPE" "$NAME" 0 $style_flags --data "$DATA" --init "$INIT" \
  --image-size 256 --batch-size 4 --device cpu --precision "${PRECISION:-auto}" \
  --threads "$THREADS" --seed "$seed" --steps "$STEPS" --time-limit "${TIME_LIMIT:-5700}" \
  --learning-rate "$LEARNING_RATE" --ema-decay "$EMA_DECAY" --warmup-steps 50 --style-ramp 0 "${LOSS_FLAGS[@]}" \
  "${PARTIAL_FLAGS[@]}" --log-every 10 --preview-every 100 --checkpoint-every 25 \
  --keep-checkpoints "$KEEP_CHECKPOINTS" --clip-gradient "$CLIP_GRADIENT" -q
exit
}
