# Sourced by the AdaIN and WCT recipes (run from the repository root).

# The paintings the AdaIN recipes never train on; benchmarks/arbitrary.py measures on them (keep the
# two lists in step).
ADAIN_HELD_OUT=(munch_the_scream.jpg monet_water_lilies_1919.jpg kandinsky_composition_vii.jpg)

# link_training_styles SOURCE_DIR TARGET_DIR: links every painting but the held-out ones into one folder.
link_training_styles() {
  local source=$1 target=$2 f name
  mkdir -p "$target"
  for f in "$source"/*; do
    name=$(basename "$f")
    case "$name" in *.jpg|*.jpeg|*.png) ;; *) continue ;; esac
    if printf '%s\n' "${ADAIN_HELD_OUT[@]}" | grep -qx "$name"; then continue; fi
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
  echo "[$recipe] training ${resume[*]:-from scratch} ($(date -Is))"
  start=$(date +%s)
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m brushwork.cli train \
    --run-dir "$run" "${resume[@]}" "$@"
  echo "[$recipe] done in $(( $(date +%s) - start )) s ($(date -Is))"
}
