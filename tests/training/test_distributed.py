"""Training on several processes (`torchrun ... -m brushwork train`): two gloo processes on the CPU take the
same steps as one process at the same global batch, for every kind, with unreadable photos too, and a run
resumes across a changed number of processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brushwork.cli.main import main
from brushwork.methods.adain import decoder_from_model
from brushwork.methods.predict import load_arbitrary_model
from brushwork.methods.wct import decoders_from_model
from brushwork.models.networks import load_network
from brushwork.models.registry import read_model
from brushwork.nets.style_predictor import style_statistics
from brushwork.nets.transformer import split_norm_params
from brushwork.training import list_checkpoints
from brushwork.training.data import BatchStream, PhotoDataset, list_images
from brushwork.training.loop import read_log

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("torch.distributed.run")


# Each kind's settings on top of `tiny`, and the share of its weights' elements that may differ by more than
# float tolerance (see `assert_same_training`).
KINDS = {
    "feedforward": ({}, 0.01),  # 0 of 34,080 weights on an AMD EPYC, 1 on an Intel Xeon (the unreadable-photo run)
    # One painting per photo in turn. Its share: 0 of 34,560 weights on an AMD EPYC, 640 (1.9%) on an Intel Xeon.
    "multi": ({"style": None, "styles": "starry-night,udnie,great-wave"}, 0.03),
    "adapt": ({"style": "water-lilies", "style_size": 64, "width": None, "num_residual": None}, 0.01),
    # At 1e-2 the tiny predictor's losses grow 1e8-fold in four steps: runs that far apart differ in rounding.
    "arbitrary": ({"style": None, "styles": "starry-night,udnie,great-wave", "embedding_size": 16,
                   "learning_rate": 1e-3}, 0.01),
    "adain": ({"style": None, "styles": "starry-night,udnie,great-wave", "decoder_width": 0.1, "style_size": 40},
              0.01),
    # 3 steps: the relu5_1 decoder inverts 2 x 2 features, where many units sit on a ReLU's edge; from the 4th
    # step on, the weights that rounding moves there move its output by up to 1e-3 (1e-6 after 3 steps).
    "wct-decoders": ({"style": None, "decoder_width": 0.1, "steps": 3}, 0.01),
}


def flags(tiny: dict, kind: str = "feedforward") -> list[str]:
    settings = {**tiny, "kind": kind, "batch_size": 4, "checkpoint_every": 2, "steps": 4, **KINDS[kind][0]}
    out = []
    for k, v in settings.items():
        if v is not None:
            out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def torchrun(args: list[str], nproc: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "brushwork", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def without_effect(model) -> dict[str, torch.Tensor]:
    """For each tensor of a model, which elements have no effect on its output: biases just before an instance
    norm, the shifts of the residual blocks' second norms (a constant added to the residual stream, which the
    next norm on every path removes), and the rows of an arbitrary-style predictor's map that give those."""
    if model.kind in ("adain", "wct"):  # decoders: no norms
        return {k: torch.zeros_like(v, dtype=torch.bool) for k, v in model.tensors.items()}
    out = {k: torch.full_like(v, k.endswith(".bias") and not k.startswith("predictor.") or k.endswith("norm2.shift"),
                              dtype=torch.bool) for k, v in model.tensors.items()}
    if model.kind == "arbitrary":
        net, _, _ = load_arbitrary_model(model)
        names = {id(m): n for n, m in net.named_modules()}
        index = torch.arange(net.norm_param_count(), dtype=torch.float32)[None]
        for layer, (_, shift) in zip(net.norm_layers(), split_norm_params(net, index)):
            if names[id(layer)].endswith("norm2"):
                rows = shift[0].long()
                out["predictor.to_params.weight"][rows] = True
                out["predictor.to_params.bias"][rows] = True
    return out


def outputs(model, vgg) -> list[torch.Tensor]:
    """What the trained networks make of a fixed photo (and, for the arbitrary kind, of a fixed style)."""
    photo = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if model.kind == "adain":
            return [decoder_from_model(model)(vgg(photo, ["relu4_1"])["relu4_1"])]
        if model.kind == "wct":
            decoders = decoders_from_model(model)
            features = vgg(photo, list(decoders))
            return [decoder(features[layer]) for layer, decoder in decoders.items()]
        if model.kind == "arbitrary":
            net, predictor, _ = load_arbitrary_model(model)
            style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
            return [net(photo, split_norm_params(net, predictor(style_statistics(vgg, style))))]
        return [load_network(model)(photo)]


def assert_same_training(run_a: Path, run_b: Path, kind: str, vgg) -> None:
    """Two runs trained the same network. Their losses agree within 1e-5 relative over the first two steps: the
    same photos, the same shares of the batch and the same first averaged update (measured: 1e-7). From then on
    they agree within 1e-2, their outputs within 2e-2 and their weights within float tolerance (1e-3 relative,
    1e-4 absolute) but for those without effect and a share of the others no larger than the kind's (KINDS).
    Why looser later: Adam moves a weight by about the learning rate whatever its gradient's size, so a weight
    whose gradient is zero up to rounding (a unit on the edge of a ReLU) takes steps whose sign the rounding picks,
    and rounding differs with the order of the sums; each step amplifies that. How much depends on the CPU's
    kernels: multi's step-4 losses 3.6e-3 apart and outputs 9.8e-3 apart on an Intel Xeon with AVX-512 BF16,
    outputs 4.9e-4 apart on an AMD EPYC. A wrong batch, share or reduction shows at the first steps instead."""
    a, b = read_model(run_a.with_suffix(".safetensors")), read_model(run_b.with_suffix(".safetensors"))
    assert a.tensors.keys() == b.tensors.keys()
    logs = [[r["losses"] for r in read_log(run)] for run in (run_a, run_b)]
    for step, (one, two) in enumerate(zip(*logs, strict=True), 1):  # the whole batch's losses, not rank 0's share
        tolerance = 1e-5 if step <= 2 else 1e-2
        assert one.keys() == two.keys() and all(abs(two[k] - one[k]) <= tolerance * abs(one[k]) for k in one), \
            (step, one, two)
    for x, y in zip(outputs(a, vgg), outputs(b, vgg), strict=True):
        torch.testing.assert_close(y, x, rtol=1e-2, atol=2e-2)
    skip = without_effect(a)
    outside = compared = 0
    for k in a.tensors:
        x, y = a.tensors[k].float()[~skip[k]], b.tensors[k].float()[~skip[k]]
        outside += int(((x - y).abs() > 1e-4 + 1e-3 * x.abs()).sum())
        compared += x.numel()
    assert outside <= KINDS[kind][1] * compared, f"{outside} of {compared} weights differ"


def test_each_rank_takes_its_slice_of_every_batch(photos):
    dataset = PhotoDataset(list_images(photos), 32, seed=0)
    whole = next(BatchStream(dataset, 4, start=3))
    halves = [next(BatchStream(dataset, 4, start=3, shard=(r, 2))) for r in range(2)]
    assert torch.equal(torch.cat(halves), whole)


@pytest.mark.parametrize("kind", list(KINDS))
def test_two_processes_train_the_weights_of_one_at_the_same_global_batch(tmp_path, photos, tiny, vgg, kind):
    """Every kind. What a loss takes from the whole batch, it takes from every process's share: adain's and
    wct-decoders' normalizing statistics, arbitrary's styles taken from other photos of the batch."""
    common = ["--data", str(photos), "-q", *flags(tiny, kind)]
    assert main(["train", "-o", str(tmp_path / "one.safetensors"), "--run-dir", str(tmp_path / "one"), *common]) == 0
    out = torchrun(["train", "-o", str(tmp_path / "two.safetensors"), "--run-dir", str(tmp_path / "two"), *common])
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", kind, vgg)
    steps = KINDS[kind][0].get("steps", 4)
    assert [c.step for c in list_checkpoints(tmp_path / "two")] == [steps, 2]  # rank 0's, once each


def test_unreadable_photos_keep_the_processes_in_step(tmp_path, photos, tiny, vgg):
    """Damaged photos (found only when decoded) in place of some of the batch: each process replaces those of
    its share as one process does, so neither waits for the other and the run is the one-process run."""
    jpeg = next(photos.rglob("*.jpg")).read_bytes()
    for i in range(4):
        (photos / f"cut{i}.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # a header that reads, a body cut short
    files = list_images(photos)
    dataset = PhotoDataset(files, 32, seed=0)
    bad = {files.index(photos / f"cut{i}.jpg") for i in range(4)}
    halves = [[dataset.file_at(4 * step + i) in bad for i in range(2 * r, 2 * r + 2)]
              for step in range(4) for r in range(2)]
    assert [True, True] in halves and [False, False] in halves  # a share wholly unreadable beside a readable one
    # At 1e-2 these photos' losses grow 40-fold in four steps, and rounding with them.
    common = ["--data", str(photos), "-q", *flags({**tiny, "learning_rate": 1e-3})]
    assert main(["train", "-o", str(tmp_path / "one.safetensors"), "--run-dir", str(tmp_path / "one"), *common]) == 0
    out = torchrun(["train", "-o", str(tmp_path / "two.safetensors"), "--run-dir", str(tmp_path / "two"), *common],
                   timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("skipping unreadable training image") >= 2  # each process found some
    assert_same_training(tmp_path / "one", tmp_path / "two", "feedforward", vgg)


def test_a_run_resumes_on_another_number_of_processes(tmp_path, photos, tiny, vgg):
    common = ["--data", str(photos), "-q", *flags(tiny)]
    assert main(["train", "-o", str(tmp_path / "one.safetensors"), "--run-dir", str(tmp_path / "one"),
                 "--steps", "4", *common]) == 0
    run = ["-o", str(tmp_path / "mixed.safetensors"), "--run-dir", str(tmp_path / "mixed")]
    out = torchrun(["train", *run, "--steps", "4", "--time-limit", "1e-9", *common])  # stops after step 1
    assert out.returncode == 0, out.stderr[-3000:]
    assert [c.step for c in list_checkpoints(tmp_path / "mixed")] == [1]
    assert main(["train", *run, "--steps", "4", "--resume", *common]) == 0  # one process finishes it
    assert_same_training(tmp_path / "one", tmp_path / "mixed", "feedforward", vgg)


def test_processes_paint_a_folder_in_shares_and_a_rerun_skips_finished_files(tmp_path, photos):
    out = tmp_path / "out"
    args = ["stylize", str(photos), "-o", str(out), "--style", "starry-night", "--size", "32", "--device", "cpu"]
    first = torchrun(args)
    assert first.returncode == 0, first.stderr[-3000:]
    expected = sorted(p.name for p in photos.iterdir() if p.is_file())
    assert sorted(p.name for p in out.iterdir()) == expected  # each image once, nothing half-written beside
    # Each process reported its own share: the folder's 3 photos (the others are in a subfolder) over 2.
    assert first.stderr.count("(2 images") == 1 and first.stderr.count("(1 image,") == 1, first.stderr
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / expected[0]).unlink()  # as if the run had been stopped before this one
    second = torchrun([*args, "--skip-existing"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert all(p.stat().st_mtime_ns == done[p.name] for p in out.iterdir() if p.name != expected[0])
