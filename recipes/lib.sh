# Shared by the recipes (source it from the repository root).

# One resumable training run of a shipped model:
#
#   train_model RECIPE NAME KEEP_EXISTING [brushwork train flags ...]
#
# Writes brushwork/models/weights/NAME.safetensors (or WEIGHTS_DIR/NAME.safetensors; fp16, card recipe RECIPE) with logs, previews and
# checkpoints in runs/RECIPE/NAME/, resuming from its last checkpoint when there is one. With
# KEEP_EXISTING=1 an existing model is left alone unless FORCE=1 (CPU recipes never replace a GPU model).
# RUN_LABEL=LABEL names the run folder and the file LABEL instead, the model still NAME: runs forked side by
# side from one model, one per core (SEED= apart), keep apart and are measured or averaged
# (recipes/average_models.py) as candidates that already carry the shipped name.
train_model() {
  local recipe=$1 name=$2 keep=$3
  shift 3
  local label=${RUN_LABEL:-$name}
  local out="${WEIGHTS_DIR:-brushwork/models/weights}/$label.safetensors"
  if [ "$keep" = 1 ] && [ -f "$out" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "[$recipe] $out exists, skipping (FORCE=1 to retrain)"
    return 0
  fi
  train_resumable "$recipe" "runs/$recipe/$label" -o "$out" --name "$name" --recipe "$recipe" \
    --save-precision fp16 "$@"
}
# The paintings no arbitrary-style recipe trains on (AdaIN here; the arbitrary-style model's STYLES list
# in arbitrary-*.sh leaves out the same four presets): starry-night-over-the-rhone, water-lilies,
# mondrian-composition, in-bed. benchmarks/arbitrary.py and benchmarks/multi.py measure on them.
HELD_OUT=(starry-night-over-the-rhone water-lilies mondrian-composition in-bed)

# The shipped style presets (the 18 shared paintings, credited in CREDITS.md): the recipes' style source,
# so a recipe needs nothing beside the package and the photos (a rented GPU machine gets only the repository and what is packed beside it).
PRESET_STYLES=brushwork/assets/styles

# has_word WORD ARGS...: whether WORD is one of ARGS. A loop, not `printf | grep -qx`: under pipefail,
# grep quitting at its first match can kill printf with SIGPIPE and fail the test at random (a
# held-out painting trained on, a log saying "from scratch" for a run from --init).
has_word() {
  local word=$1 arg
  shift
  for arg in "$@"; do
    if [ "$arg" = "$word" ]; then return 0; fi
  done
  return 1
}

# link_training_styles SOURCE_DIR TARGET_DIR: links every painting but the held-out ones into one folder
# (a held-out painting is matched by its file name without the suffix: a preset name).
link_training_styles() {
  local source=$1 target=$2 f name
  mkdir -p "$target"
  for f in "$source"/*; do
    name=$(basename "$f")
    case "$name" in *.jpg|*.jpeg|*.png) ;; *) continue ;; esac
    if has_word "${name%.*}" "${HELD_OUT[@]}"; then continue; fi
    ln -sfn "$(cd "$(dirname "$f")" && pwd)/$name" "$target/$name"
  done
}

# keep_trained RECIPE OUT: exits the recipe when OUT exists, unless FORCE=1 (a CPU recipe must not
# replace a GPU-trained model).
keep_trained() {
  if [ -f "$2" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "[$1] $2 exists, skipping (FORCE=1 to retrain)"
    exit 0
  fi
}

# train_resumable RECIPE RUN_DIR TRAIN_ARGS...: `brushwork train` in RUN_DIR, continuing its latest
# checkpoint when there is one, with the start, end and wall time logged.
train_resumable() {
  local recipe=$1 run=$2 start
  shift 2
  local resume=()
  if compgen -G "$run/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
  local start_from="from scratch"
  if [ -n "${resume[*]}" ]; then start_from="--resume"
  elif has_word --init "$@"; then start_from="a new run from --init"; fi
  echo "[$recipe] training $start_from ($(date -Is))"
  start=$(date +%s)
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m brushwork.cli train \
    --run-dir "$run" "${resume[@]}" "$@"
  echo "[$recipe] done in $(( $(date +%s) - start )) s ($(date -Is))"
}

# Every CPU recipe trains with --precision "${PRECISION:-auto}": bf16 autocast on a CPU with native bf16
# (AMX / AVX-512 BF16), fp32 elsewhere (brushwork.runtime). Why: on the AMX Xeon of 2026-12-05 a step of
# the 256 px recipe took 5.1-5.8 s in bf16 against 13.7-15.2 s in fp32 (the same six batches, interleaved;
# `benchmarks/train_speed.py`: 2.82x), and its bf16 runs trained as well as the fp32 ones
# (docs/training-history.md, training round 31); on a CPU without native bf16, emulated bf16 is ~3x slower
# than fp32 (DEVELOPERS.md), so auto stays fp32 there. Resuming, auto keeps the run's own precision (a run
# resumes only in the one it started in), so a run begun in fp32 continues on any machine.

# gpu_flags: sets GPU_FLAGS, the flags every GPU recipe ends with: CUDA and bf16 autocast (DEVICE= and
# PRECISION= override them, for a smoke run on the CPU), WORKERS loader processes (default 8), a log
# record every 100 steps, and, when TIME_LIMIT (seconds) is set, --time-limit: the model is written
# when it runs out, its card saying the steps done (a rented GPU's window may be minutes long).
gpu_flags() {
  GPU_FLAGS=(--device "${DEVICE:-cuda}" --precision "${PRECISION:-bf16}" --num-workers "${WORKERS:-8}"
             --log-every 100 --preview-every 2000 --checkpoint-every 2000)
  if [ -n "${TIME_LIMIT:-}" ]; then GPU_FLAGS+=(--time-limit "$TIME_LIMIT"); fi
}

# cpu_start_point: where a CPU recipe of a style network starts; sets init, STYLE_RAMP, LR and seed
# (start_seed).
# By default stage 0 (recipes/reconstruct-cpu.sh, run when missing): the style weight ramps in over 100
# steps, lr 1e-3. INIT=MODEL continues from a trained model of the recipe's kind instead (for example the
# shipped one, with FORCE=1): the style weight applies at once, the learning rate warms up again (a
# shipped model holds no optimizer state) at 3e-4, and the card's "init" names MODEL, so the total is
# that model's steps plus STEPS. Why 3e-4: at 1e-3 a fresh Adam state threw multi-paintings' style loss
# from ~220k to 3M within 60 steps of the warm-up's end (measured; it recovered only slowly).
cpu_start_point() {
  if [ -n "${INIT:-}" ]; then
    init=$INIT
    STYLE_RAMP=0
    LR=${LR:-3e-4}
    seed=$(start_seed "$INIT")
  else
    DATA="$DATA" THREADS="$THREADS" PYTHON="$PYTHON" bash recipes/reconstruct-cpu.sh
    init="runs/feedforward-cpu/reconstruct.safetensors"
    STYLE_RAMP=100
    LR=${LR:-1e-3}
    seed=$(start_seed)
  fi
}

# model_arch_flags MODEL: the `brushwork train` flags that build MODEL's own architecture: --width and
# --num-residual of a style network (and --embedding-size of an arbitrary-style one), --decoder-width of AdaIN
# and WCT decoders (brushwork.training.options.network_settings). `--init MODEL` alone adopts them; these
# flags are for a recipe that sets its own shape for a run from scratch (the GPU recipes' --width 32) and
# must override it when it continues MODEL instead.
model_arch_flags() { _model_flags arch "$1"; }

# start_seed [MODEL]: the --seed of a recipe's run: SEED when set; for a run that continues MODEL, the
# steps MODEL was trained over every stage (its card's `init` chain; 0 when a stage's count is unknown);
# else 0 (a run from noise or from the recipe's own stage 0). The photo order and crops are a function of
# the seed and the step, so with one fixed seed every continuation of a model would see the same first
# batches again and never the photos at the end of the epoch. The same holds for a run that was not
# shipped: the next continuation of the same model gets the same seed and repeats it bit for bit
# (woman-with-a-hat, 2026-12-01 and 2026-12-02, the same loss jump at the same step); give SEED= then.
start_seed() {
  if [ -n "${SEED:-}" ]; then echo "$SEED"
  elif [ -n "${1:-}" ]; then _model_flags seed "$1"
  else echo 0
  fi
}

# _model_flags arch|style|seed MODEL [NAME]: reads MODEL (a shipped name or a file) and prints what
# model_arch_flags, model_style_flags or start_seed describe; a missing or foreign MODEL fails
# with its one-line error.
_model_flags() {
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" - "$@" <<'PY'
import sys
from brushwork.errors import BrushworkError
from brushwork.models.registry import find_model
what, name = sys.argv[1], sys.argv[2]
try:
    model = find_model(name)
except BrushworkError as exc:
    sys.exit(str(exc))
c = model.config
if what == "seed":
    flags = [model.trained_steps or 0]
elif what == "arch":
    from brushwork.training.options import network_settings

    flags = [x for k, v in network_settings(model).items() for x in ("--" + k.replace("_", "-"), v)]
elif model.kind == "multi":
    flags = ["--kind", "multi", "--styles", ",".join(c["styles"])]
elif model.kind == "feedforward":
    flags = ["--kind", "feedforward", "--style", sys.argv[3]]
else:
    sys.exit(f"{name}: {model.kind} models are not style networks (feedforward or multi)")
print(" ".join(str(f) for f in flags))
PY
}

# gpu_start_point FRESH_LR: where a GPU recipe starts; sets START_FLAGS, which the recipe passes after
# its own flags (the later flag wins). By default from scratch at the recipe's full size, lr FRESH_LR
# (or LR). INIT=MODEL continues a trained model of the recipe's kind instead, such as the shipped one:
# a rented GPU's few minutes add more on top of a trained model than from noise (from noise, a few
# hundred steps leave a texture without a subject; see feedforward-cpu.sh). Then the network takes
# MODEL's architecture (model_arch_flags), the style weight applies at once (--style-ramp 0), and the
# learning rate, LR or at most 3e-4, warms up over 100 steps (a fresh Adam state at 1e-3 threw a trained
# network's style loss from ~220k to 3M on the CPU). The seed is start_seed's.
gpu_start_point() {
  local fresh=$1 lr
  if [ -n "${INIT:-}" ]; then
    lr=${LR:-$("${PYTHON:-python3}" -c "print(min($fresh, 3e-4))")}
    # shellcheck disable=SC2207
    START_FLAGS=(--init "$INIT" $(model_arch_flags "$INIT") --style-ramp 0 --warmup-steps 100
                 --learning-rate "$lr" --seed "$(start_seed "$INIT")")
  else
    START_FLAGS=(--learning-rate "${LR:-$fresh}" --seed "$(start_seed)")
  fi
}

# model_style_flags MODEL NAME: the `brushwork train` flags that keep MODEL's styles when it is continued
# (`--init MODEL`): `--kind multi --styles` with the multi-style model's own list, in its order (a style's
# norm row is matched by position), or `--kind feedforward --style NAME` for a single-style network.
model_style_flags() { _model_flags style "$1" "$2"; }

# metric_loss_flags: sets LOSS_FLAGS, the objective the style-network recipes train against since it was
# measured to move the quality benchmarks (docs/training-history.md, feed-forward networks): optimize's own layers
# (relu4_2 content; Gram style over relu1_1..relu5_1 with targets at 512 px, the size the benchmarks
# measure at), no TV, style weight STYLE_WEIGHT (default 15: at the metric's own 50, a 256 px CPU run
# lost the photo's subject, content 2.4x optimize's). For networks trained on 256 px crops.
metric_loss_flags() {
  LOSS_FLAGS=(--content-layers relu4_2 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-size 512
              --tv-weight 0 --style-weight "${STYLE_WEIGHT:-15}")
}

# partial_training_flags: sets PARTIAL_FLAGS for a multi-style network from TRAIN_STYLES= (comma-separated
# names among its styles: the only ones trained), STYLE_REPEAT=NAME:N,... (those styles drawn N times per
# round of the round robin, the others once) and NORM_ONLY=1 (only the styles' norm rows; the shared
# convolutions stay as INIT has them, so the styles not trained stay exactly as they were).
partial_training_flags() {
  PARTIAL_FLAGS=()
  if [ -n "${TRAIN_STYLES:-}" ]; then PARTIAL_FLAGS+=(--train-styles "$TRAIN_STYLES"); fi
  if [ -n "${STYLE_REPEAT:-}" ]; then PARTIAL_FLAGS+=(--style-repeat "$STYLE_REPEAT"); fi
  if [ "${NORM_ONLY:-0}" = 1 ]; then PARTIAL_FLAGS+=(--norm-only); fi
}
