"""Feed-forward stylization speed on this machine: prints a Markdown table.

    python benchmarks/stylize.py                 # 512 and 1024 px, every CPU path, tiled 4096 x 4096
    python benchmarks/stylize.py --quick         # 512 px only, fewer paths
    python benchmarks/stylize.py --tiled-reference   # also the untiled fp32 reference at 4096 (~10 GB, slow)

Peak memory: each path runs once in a fresh subprocess, so its peak resident memory (os.wait4's
ru_maxrss) is its own; that run's output is compared with the reference's (a plain fp32 PyTorch
forward of the same network) as PSNR over the clamped [0, 1] images. Time: all paths are loaded in
one more process, warmed up, and timed in interleaved rounds (this CPU is shared and its load
changes by the minute, so paths timed minutes apart would not be comparable); the table shows the
fastest round, the median in brackets. The model is a shipped one when brushwork/models/weights
has one, else a random-init width-32 network (said in the output). When CUDA is present, images
per second at 1920 x 1080 are measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _photos import example_photos  # noqa: E402

# name -> description (the reference first, the default second)
PATHS = {
    "reference": "plain fp32 PyTorch forward (reference)",
    "default": "**default CPU path** (`stylize`, backend auto)",
    "torch-inference": "InferenceNet in PyTorch, fp32 (`--backend torch --precision fp32`)",
    "torch-inference-bf16": "InferenceNet in PyTorch, bf16 autocast (`--backend torch --precision bf16`)",
    "channels-last": "plain net, fp32 channels_last",
    "bf16": "plain net, bf16 autocast + channels_last",
    "jit-freeze": "plain net, torch.jit.freeze + optimize_for_inference",
    "ort-plain": "onnxruntime, plain graph (torch.onnx export), all optimizations",
    "ort-int8": "onnxruntime, InferenceNet graph, int8 dynamic quantization",
}
QUICK = ("reference", "default", "torch-inference")


def _content(height: int, width: int):
    """A photo-like test image: the bundled example photos as a mosaic, resized to height x width."""
    import torch

    from brushwork.imaging import load_image, resize

    photos = example_photos()
    if height * width <= 1024 * 1024:  # one photo (astronaut): the others are not decoded
        return resize(load_image(photos[0])[0], (height, width)).clamp(0, 1)
    tiles = [resize(load_image(p)[0], (512, 512)) for p in photos]
    row = torch.cat([tiles[i % len(tiles)] for i in range(4)], 3)
    grid = torch.cat([torch.roll(row, shifts=512 * i, dims=3) for i in range(4)], 2)
    return resize(grid, (height, width)).clamp(0, 1)


def _network(model: str | None):
    import torch

    from brushwork.models.networks import load_network
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    if model:
        return load_network(model)
    torch.manual_seed(0)
    net = StyleTransferNet(TransformerConfig(width=32)).eval()
    with torch.no_grad():  # random norm parameters, so the output is not just a normalized blur
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.2)
            layer.shift.normal_(0.0, 0.2)
    return net


def _build(path: str, net, threads: int):
    """A callable: 1 x 3 x H x W in [0, 1] -> output tensor, for one path."""
    import io
    import warnings

    import torch

    from brushwork.methods.feedforward import FeedForwardStylizer

    if path == "reference":
        return lambda x: net(x)
    if path == "default":
        s = FeedForwardStylizer(net)
        print(f"default backend: {s.backend}", file=sys.stderr)
        return lambda x: s.stylize_tensor(x)
    if path in ("torch-inference", "torch-inference-bf16"):
        # Precision pinned: with `auto`, a CPU with native bf16 (AMX) runs the torch backend in bf16.
        precision = "bf16" if path.endswith("bf16") else "fp32"
        s = FeedForwardStylizer(net, backend="torch", precision=precision)
        return lambda x: s.stylize_tensor(x)
    if path == "channels-last":
        m = net.to(memory_format=torch.channels_last)
        return lambda x: m(x.contiguous(memory_format=torch.channels_last))
    if path == "bf16":
        m = net.to(memory_format=torch.channels_last)

        def run(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(x.contiguous(memory_format=torch.channels_last)).float()
        return run
    if path == "jit-freeze":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, torch.rand(1, 3, 64, 64))
            m = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        return lambda x: m(x)
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    if path == "ort-plain":
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), buf, opset_version=17, input_names=["image"],
                              output_names=["out"], dynamo=False,
                              dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "h", 3: "w"}})
        model = buf.getvalue()
    elif path == "ort-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from brushwork.nets.onnx_graph import build_onnx

        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
            src.write_bytes(build_onnx(net).SerializeToString())
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
            model = dst.read_bytes()
    else:
        raise SystemExit(f"unknown path {path}")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: torch.from_numpy(sess.run(None, {name: x.numpy()})[0])


def worker(args) -> None:
    """One path at one size, in this (fresh) process; writes a JSON result (and the output image)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    net = _network(args.model)
    result = {"path": args.worker, "size": args.size, "threads": args.threads}
    if args.worker == "tiled":
        from PIL import Image

        from brushwork.imaging import tensor_to_image
        from brushwork.methods.feedforward import FeedForwardStylizer

        image = tensor_to_image(_content(args.size, args.size))
        stylizer = FeedForwardStylizer(net)
        result["backend"] = stylizer.backend
        start = time.perf_counter()
        out = stylizer.stylize(image, tile=args.tile, preserve_color=args.preserve_color)
        result["times"] = [time.perf_counter() - start]
        if args.save:
            np.save(args.save, np.asarray(out))
        assert isinstance(out, Image.Image) and out.size == image.size
    elif args.worker == "timing":
        # Every path in this one process, timed in interleaved rounds: on a shared CPU whose load
        # changes by the minute, paths timed minutes apart are not comparable, rounds are.
        x = _content(args.size, args.size)
        names = args.paths.split(",")
        fns = {}
        with torch.no_grad():
            for name in names:
                fns[name] = _build(name, net, args.threads)
                fns[name](x)  # warm-up
            times = {name: [] for name in names}
            for _ in range(args.repeat):
                for name in names:
                    start = time.perf_counter()
                    fns[name](x)
                    times[name].append(time.perf_counter() - start)
        result["times"] = times
    else:
        x = _content(args.size, args.size)
        fn = _build(args.worker, net, args.threads)
        times = []
        with torch.no_grad():
            y = fn(x)  # warm-up (and the output)
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn(x)
                times.append(time.perf_counter() - start)
        result["times"] = times
        if args.save:
            np.save(args.save, (y.float().clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    Path(args.result).write_text(json.dumps(result))


def _spawn(path: str, size: int, args, tmp: Path, save: bool, repeat: int, tile: int = 0,
           preserve_color: str = "none") -> dict:
    result = tmp / f"{path}-{size}-{preserve_color}.json"
    cmd = [sys.executable, __file__, "--worker", path, "--size", str(size), "--threads", str(args.threads),
           "--repeat", str(repeat), "--result", str(result), "--tile", str(tile), "--preserve-color", preserve_color]
    if args.model:
        cmd += ["--model", args.model]
    if path == "timing":
        cmd += ["--paths", ",".join(args.timed)]
    if save:
        cmd += ["--save", str(tmp / f"{path}-{size}.npy")]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = tmp / f"{path}-{size}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    code = os.waitstatus_to_exitcode(status)
    err = log.read_text()
    if code != 0 or not result.exists():
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
        return {"path": path, "size": size, "error": last}
    out = json.loads(result.read_text())
    out["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    if save:
        out["image"] = str(tmp / f"{path}-{size}.npy")
    return out


def _psnr(a_path: str, b_path: str) -> float:
    import numpy as np
    from _reference import psnr

    return psnr(np.load(a_path), np.load(b_path))


def _fmt_ms(r: dict) -> str:
    if "error" in r:
        return "failed"
    t = sorted(r["times"])
    return f"{t[0] * 1000:,.0f} ({t[len(t) // 2] * 1000:,.0f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a model file or shipped name (default: the first shipped model, else random-init)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's default, all cores)")
    p.add_argument("--sizes", default="512,1024", help="square sizes for the per-path table")
    p.add_argument("--paths", default=",".join(PATHS), help="paths to measure (comma-separated)")
    p.add_argument("--quick", action="store_true", help="512 px and the reference/default/torch paths only")
    p.add_argument("--tiled-size", type=int, default=4096, help="side of the tiled case (0: skip)")
    p.add_argument("--tile", type=int, default=1024, help="tile size of the tiled case")
    p.add_argument("--tiled-reference", action="store_true", help="also run the untiled reference at the tiled size")
    p.add_argument("--tiled-colors", default="none,histogram",
                   help="--preserve-color modes of the tiled case (histogram recolours the whole image: more memory)")
    p.add_argument("--gpu-only", action="store_true", help="only the CUDA table (images per second at 1920 x 1080)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=3, help="timed rounds per size (default: %(default)s)")
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    p.add_argument("--preserve-color", default="none", help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    if args.threads is None:
        args.threads = torch.get_num_threads()
    if args.worker:
        worker(args)
        return
    if args.gpu_only:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu-only: no CUDA device here")
        _gpu_table(args)
        return

    from brushwork.models.registry import shipped_models

    note = ""
    if args.model is None:
        shipped = [m for m in shipped_models() if m.kind == "feedforward"]
        if shipped:
            args.model = str(shipped[0].path)
            c = shipped[0].config
            note = (f"shipped model `{shipped[0].name}` (width {c.get('width')}, "
                    f"{c.get('num_residual')} residual blocks)")
        else:
            note = "random-init width-32 network (no shipped model yet)"
    else:
        note = f"model `{args.model}`"
    sizes = [512] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    paths = list(QUICK) if args.quick else [s for s in args.paths.split(",") if s]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        paths = [q for q in paths if not q.startswith("ort-")]

    load = os.getloadavg()[0]
    print(f"# Feed-forward stylization on this CPU\n\n{_cpu_name()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} thread(s); load average {load:.1f} at the start.\n"
          f"Network: {note}. Input: a photo resized to N x N. Time: ms per image, fastest run (median).\n",
          flush=True)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.model and Path(args.model).is_file():  # a private copy: the file may be retrained meanwhile
            shutil.copy(args.model, tmp / Path(args.model).name)
            args.model = str(tmp / Path(args.model).name)
        baseline = _spawn("reference", 64, args, tmp, save=False, repeat=1)
        results = {}
        for size in sizes:
            # Peak memory and output: each path alone in a fresh process, one run.
            for path in paths:
                results[path, size] = _spawn(path, size, args, tmp, save=True, repeat=0)
            # Time: all paths that ran, interleaved in one process.
            args.timed = [q for q in paths if "error" not in results[q, size]]
            timing = _spawn("timing", size, args, tmp, save=False, repeat=args.repeat)
            for path in args.timed:
                if "error" in timing:
                    results[path, size] = {"path": path, "error": "timing: " + timing["error"]}
                else:
                    results[path, size]["times"] = timing["times"][path]
                print(f"<!-- {path} {size}: {_fmt_ms(results[path, size])} ms -->", file=sys.stderr, flush=True)

        if sizes and paths:
            _print_table(paths, sizes, results)
        if "error" not in baseline:
            print(f"\nPeak RSS includes Python + torch + onnxruntime: a 64 px reference run peaks at "
                  f"{baseline['peak_rss_mb']:,.0f} MB.")

        if args.tiled_size:
            n = args.tiled_size
            print(f"\n| tiled path, {n} x {n}, --tile {args.tile} | ms per image | peak RSS "
                  "| PSNR vs untiled reference |")
            print("|---|---|---|---|")
            for mode in args.tiled_colors.split(","):
                # The reference comparison is for the plain path; a recoloured output differs from it by design.
                compare = args.tiled_reference and mode == "none"
                t = _spawn("tiled", n, args, tmp, save=compare, repeat=1, tile=args.tile, preserve_color=mode)
                label = f"default backend, --preserve-color {mode}"
                if "error" in t:
                    print(f"| {label} | failed: {t['error'][:80]} | | |")
                    continue
                ps = "not run (--tiled-reference)" if mode == "none" else "n/a (recoloured)"
                if compare:
                    ref = _spawn("reference", n, args, tmp, save=True, repeat=0)
                    ps = f"{_psnr(t['image'], ref['image']):.1f} dB (reference peak RSS {ref['peak_rss_mb']:,.0f} MB)" \
                        if "error" not in ref else f"reference failed: {ref['error'][:60]}"
                ok = "under" if t["peak_rss_mb"] < 3072 else "OVER"
                print(f"| {t.get('backend')} backend, PIL in and out, --preserve-color {mode} | {_fmt_ms(t)} | "
                      f"{t['peak_rss_mb']:,.0f} MB ({ok} 3 GB) | {ps} |")
    print(f"\nLoad average {os.getloadavg()[0]:.1f} at the end (other jobs share this CPU).")

    if torch.cuda.is_available():
        _gpu_table(args)


def _print_table(paths, sizes, results) -> None:
    header = "| path | " + " | ".join(f"{s} px ms | {s} px peak RSS | {s} px PSNR" for s in sizes) + " | speed-up |"
    print(header)
    print("|" + "---|" * (2 + 3 * len(sizes)))
    for path in paths:
        cells = []
        for size in sizes:
            r, ref = results[path, size], results["reference", size] if "reference" in paths else None
            if "error" in r:
                cells += [f"failed: {r['error'][:60]}", "", ""]
                continue
            ps = _psnr(r["image"], ref["image"]) if ref and "image" in ref and "image" in r else float("nan")
            cells += [_fmt_ms(r), f"{r['peak_rss_mb']:,.0f} MB", "ref" if path == "reference" else f"{ps:.1f} dB"]
        speed = []
        for size in sizes:
            r, ref = results[path, size], results.get(("reference", size))
            if ref and "error" not in r and "error" not in ref:
                speed.append(f"{min(ref['times']) / min(r['times']):.2f}x")
        print(f"| {PATHS[path]} | " + " | ".join(cells) + f" | {' / '.join(speed)} |", flush=True)


def _gpu_table(args) -> None:
    import torch

    from brushwork.methods.feedforward import FeedForwardStylizer

    net = _network(args.model)
    print(f"\n## {torch.cuda.get_device_name()}: images per second at 1920 x 1080\n")
    print("| precision | batch | images/s |\n|---|---|---|")
    for precision in ("fp32", "bf16"):
        s = FeedForwardStylizer(net, device="cuda", precision=precision, backend="torch")
        for batch in (1, 8):
            x = torch.rand(batch, 3, 1080, 1920, device="cuda")
            x = x.contiguous(memory_format=torch.channels_last) if s.runtime.channels_last else x
            with torch.no_grad(), s.runtime.autocast():
                for _ in range(3):
                    s._module(x)
                torch.cuda.synchronize()
                start, n = time.perf_counter(), 0
                while time.perf_counter() - start < 3:
                    s._module(x)
                    n += batch
                torch.cuda.synchronize()
            print(f"| {precision} | {batch} | {n / (time.perf_counter() - start):.1f} |", flush=True)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


if __name__ == "__main__":
    main()
