# Sourced by the AdaIN recipes: links the training paintings into one folder, leaving out the
# held-out ones that benchmarks/arbitrary.py measures on (keep the two lists in step).
# Usage: link_training_styles SOURCE_DIR TARGET_DIR
ADAIN_HELD_OUT=(munch_the_scream.jpg monet_water_lilies_1919.jpg kandinsky_composition_vii.jpg)

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
