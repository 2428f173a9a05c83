# Shared by the many-style recipes (source it): one resumable training run of a shipped model.
#
#   train_model RECIPE NAME KEEP_EXISTING [brushwork train flags ...]
#
# Writes brushwork/models/weights/NAME.safetensors (fp16, card recipe RECIPE) with logs, previews and
# checkpoints in runs/RECIPE/NAME/, resuming from its last checkpoint when there is one. With
# KEEP_EXISTING=1 an existing model is left alone unless FORCE=1 (CPU recipes never replace a GPU model).
train_model() {
  local recipe=$1 name=$2 keep=$3
  shift 3
  local out="brushwork/models/weights/$name.safetensors" run="runs/$recipe/$name" start
  if [ "$keep" = 1 ] && [ -f "$out" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "[$recipe] $out exists, skipping (FORCE=1 to retrain)"
    return 0
  fi
  local resume=()
  if compgen -G "$run/checkpoints/step-*.json" > /dev/null; then resume=(--resume); fi
  echo "[$recipe] $name: training ${resume[*]:-from scratch} ($(date -Is))"
  start=$(date +%s)
  "${PYTHON:-python3}" -m brushwork.cli train -o "$out" --name "$name" --recipe "$recipe" --save-precision fp16 \
    --run-dir "$run" "${resume[@]}" "$@"
  echo "[$recipe] $name: done in $(( $(date +%s) - start )) s ($(date -Is))"
}
