#!/usr/bin/env bash
# Training on a GPU rented for a short, fixed window, in one command: every shipped model trained at once
# on one CUDA GPU for a fixed time, then the GPU speed figures, all packed into $OUT, the folder whose
# files are copied back from the GPU machine.
#
# Why one command: such a window has been 15 minutes of device time in all (the machine's start
# included) and at most 10 minutes per command, far less than the full recipes' step counts need
# (feedforward-gpu.sh's 40,000 steps per style, ...). So the ten trainings of the shipped models (six
# styles, the multi-style network, the arbitrary-style network, the AdaIN decoder and the WCT decoders)
# run side by side, each with --time-limit TRAIN_SECONDS, and each card records the steps it reached
# (planned_steps: the full recipe's). Run on the same setting again, they would resume from their
# checkpoints, but a fresh machine has none: the next window starts over (or goes longer, if rented longer).
#
# On the CPU machine, first:  bash recipes/pack-gpu-window.sh   (gpu-pack/: photos and VGG-19 weights)
# On the GPU machine, with gpu-pack/ beside the repository, under a time limit below the per-command one:
#                             OUT=RESULTS timeout 570 bash recipes/gpu-window.sh
# Back on the CPU machine:    bash recipes/gpu-window.sh --unpack RESULTS
#                 (RESULTS: the folder the result files were copied back to; writes the GPU-trained models
#                 into brushwork/models/weights/ and the logs, cards and speed figures into runs/gpu-window/)
# A smoke run on the CPU (one step of two trainers, a few minutes):
#   DEVICE=cpu PRECISION=fp32 OMP_NUM_THREADS=1 WORKERS=1 TRAIN_SECONDS=5 SPEED=0 TRAINERS="starry-night wct" \
#     OUT=/tmp/o bash recipes/gpu-window.sh
set -uo pipefail
{  # one block, read whole before it runs: safe to edit during a run (recipes/README.md)
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--unpack" ]; then
  set -e
  from=${2:?usage: gpu-window.sh --unpack FOLDER}
  cat "$from"/gpu-window.tar.part-* > /tmp/gpu-window.tar
  tar -xf /tmp/gpu-window.tar
  rm /tmp/gpu-window.tar
  echo "unpacked: $(ls runs/gpu-window/weights/ | tr '\n' ' ')"
  for f in runs/gpu-window/weights/*.safetensors; do
    cp "$f" brushwork/models/weights/
  done
  cat runs/gpu-window/summary.md
  exit 0
fi

TRAIN_SECONDS=${TRAIN_SECONDS:-330}
# CONTINUE=1 (the default): each trainer continues the package's model of its name, as INIT= of its
# recipe. In 330 s shared by nine trainers each gets some hundreds
# of steps: from noise that leaves a texture without a subject (the CPU recipes learned this), worse
# than the CPU models it would replace. CONTINUE=0 starts from noise at the recipes' full widths (for
# a GPU rented for hours).
CONTINUE=${CONTINUE:-1}
SPEED=${SPEED:-1}
OUT=${OUT:?set OUT to the folder for the results, the one copied back from the GPU machine}
PYTHON=${PYTHON:-python3}
PACK=${PACK:-gpu-pack}
WINDOW=runs/gpu-window
WEIGHTS=$WINDOW/weights

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHON PYTHONUNBUFFERED=1
export DATA=${DATA:-$PACK/content}
if [ -f "$PACK/vgg19_q.bin" ]; then export BRUSHWORK_VGG19_WEIGHTS=$PWD/$PACK/vgg19_q.bin; fi
export TIME_LIMIT=$TRAIN_SECONDS
# 16 CPU cores for nine trainers: two loader processes each keep a GPU trainer fed with 256 px photos.
export WORKERS=${WORKERS:-2}
rm -rf "$WINDOW"
mkdir -p "$WEIGHTS" "$WINDOW/logs" "$OUT"
# Loader processes pass batches through shared memory, which a sandboxed machine may not give: probe
# once, and decode in the trainers themselves (slower, but running) when it fails.
if [ "$WORKERS" != 0 ] && ! timeout 60 "$PYTHON" -c "
import torch
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(8, 3, 64, 64)), batch_size=4,
                                     num_workers=1)
assert sum(b[0].shape[0] for b in loader) == 8" > "$WINDOW/logs/worker-probe.log" 2>&1; then
  echo "loader processes failed (see logs/worker-probe.log): WORKERS=0" >> "$WINDOW/logs/worker-probe.log"
  export WORKERS=0
fi
start=$(date +%s)
{
  echo "# GPU training run $(date -Is)"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "photos: $(ls "$DATA" | wc -l) in $DATA; training: $TRAIN_SECONDS s per model, all at once;" \
       "$WORKERS loader processes each; continuing the package's models: $CONTINUE"
} > "$WINDOW/summary.md" 2>&1

# name, then the command: every trainer writes its model into $WEIGHTS, its log into $WINDOW/logs.
trainers=(
  "starry-night|bash recipes/feedforward-gpu.sh starry-night"
  "great-wave|bash recipes/feedforward-gpu.sh great-wave"
  "the-scream|bash recipes/feedforward-gpu.sh the-scream"
  "composition-vii|bash recipes/feedforward-gpu.sh composition-vii"
  "udnie|bash recipes/feedforward-gpu.sh udnie"
  "woman-with-a-hat|bash recipes/feedforward-gpu.sh woman-with-a-hat"
  "multi-paintings|bash recipes/multi-gpu.sh"
  "adain|bash recipes/adain-gpu.sh"
  "wct|DECODER_WIDTH=0.5 bash recipes/wct-gpu.sh"
)
# TRAINERS="starry-night adain" runs only those (a CPU smoke run cannot afford ten at once).
if [ -n "${TRAINERS:-}" ]; then
  chosen=()
  for entry in "${trainers[@]}"; do
    case " $TRAINERS " in *" ${entry%%|*} "*) chosen+=("$entry") ;; esac
  done
  trainers=("${chosen[@]}")
fi
pids=()
for entry in "${trainers[@]}"; do
  name=${entry%%|*}
  command=${entry#*|}
  # WEIGHTS_DIR for the recipes that name models after styles, MODEL for the AdaIN and WCT ones.
  init=
  if [ "$CONTINUE" = 1 ] && [ -f "brushwork/models/weights/$name.safetensors" ]; then
    init=brushwork/models/weights/$name.safetensors
  fi
  INIT=$init WEIGHTS_DIR=$WEIGHTS MODEL=$WEIGHTS/$name.safetensors bash -c "$command" > "$WINDOW/logs/$name.log" 2>&1 &
  pids+=("$!")
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${trainers[$i]%%|*}")
done
echo "training: $(( $(date +%s) - start )) s wall; failed: ${failed[*]:-none}" >> "$WINDOW/summary.md"

# Per model: steps reached, photos per second (all ten shared the GPU), final losses, from each card.
"$PYTHON" - "$WEIGHTS" >> "$WINDOW/summary.md" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
from brushwork.models.registry import read_model
print("\n| model | kind | steps (planned) | photos/s while shared | wall s | final losses |\n|---|---|---|---|---|---|")
total = 0.0
for path in sorted(p for folder in sys.argv[1:] for p in Path(folder).glob("*.safetensors")):
    card = read_model(path).card
    rate = card["steps"] * card["batch_size"] / max(card["wall_time_s"], 1e-9)
    total += rate
    losses = ", ".join(f"{k} {v:.4g}" for k, v in card.get("final_losses", {}).items())
    print(f"| {path.stem} | {card['kind']} | {card['steps']} ({card.get('planned_steps')}) | {rate:.1f} | "
          f"{card['wall_time_s']} | {losses} |")
print(f"\nAll trainers together: {total:.0f} photos per second (256 px crops).")
EOF

if [ "$SPEED" = 1 ]; then
  {
    echo
    timeout 60 "$PYTHON" benchmarks/stylize.py --gpu-only --model "$WEIGHTS/starry-night.safetensors"
    timeout 60 "$PYTHON" benchmarks/arbitrary.py --gpu-only --adain-decoder "$WEIGHTS/adain.safetensors" \
      --wct-decoder "$WEIGHTS/wct.safetensors"
  } >> "$WINDOW/summary.md" 2>&1
fi
echo "total: $(( $(date +%s) - start )) s" >> "$WINDOW/summary.md"

# What comes back: at most 8 files of 16 MiB. The models, logs and summary in one tar, split in parts.
{ find "$WINDOW" -type f; ls runs/*-gpu/*/log.jsonl runs/*-gpu/*/card.json 2>/dev/null; } \
  | tar -cf - -T - | split -b 15m - "$OUT/gpu-window.tar.part-"
cp "$WINDOW/summary.md" "$OUT/summary.md"
cat "$WINDOW/summary.md"
ls -la "$OUT"
exit
}
