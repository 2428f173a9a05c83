"""Training on several processes (`torchrun ... -m brushwork train`): two gloo processes on the CPU take the
same steps as one process at the same global batch, and a run resumes across a changed number of processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brushwork.cli.main import main
from brushwork.methods.export import load_network
from brushwork.models.registry import read_model
from brushwork.training import list_checkpoints
from brushwork.training.data import BatchStream, PhotoDataset, list_images
from brushwork.training.loop import read_log

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("torch.distributed.run")


def flags(tiny: dict, kind: str = "feedforward") -> list[str]:
    settings = {**tiny, "kind": kind, "batch_size": 4, "checkpoint_every": 2}
    if kind == "multi":  # several paintings, one per photo of the batch in turn
        del settings["style"]
        settings["styles"] = "starry-night,udnie,great-wave"
    out = []
    for k, v in settings.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "brushwork", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def assert_same_network(path_a, path_b):
    """The same weights within float tolerance, and the same output. Biases just before an instance norm have
    no effect on the output and a gradient of zero up to rounding, which Adam's first steps scale to the
    learning rate with either sign: those are left out of the weights' comparison."""
    a, b = read_model(path_a), read_model(path_b)
    assert a.tensors.keys() == b.tensors.keys()
    nets = [load_network(m) for m in (a, b)]
    without_effect = {k for k in a.tensors if k.endswith(".bias") or k.endswith("norm2.shift")}
    for k in a.tensors.keys() - without_effect:
        torch.testing.assert_close(b.tensors[k], a.tensors[k], rtol=1e-3, atol=1e-4)
    photo = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(nets[1](photo), nets[0](photo), rtol=1e-3, atol=1e-3)


def test_each_rank_takes_its_slice_of_every_batch(photos):
    dataset = PhotoDataset(list_images(photos), 32, seed=0)
    whole = next(BatchStream(dataset, 4, start=3))
    halves = [next(BatchStream(dataset, 4, start=3, shard=(r, 2))) for r in range(2)]
    assert torch.equal(torch.cat(halves), whole)


@pytest.mark.parametrize("kind", ["feedforward", "multi"])
def test_two_processes_train_the_weights_of_one_at_the_same_global_batch(tmp_path, photos, tiny, kind):
    """Kinds whose loss is a mean of per-photo losses (feedforward; multi, each photo with its painting of the
    one-process run). adain normalizes its losses by the batch's statistics and arbitrary draws styles from
    the batch's other photos: they train alike on several processes, but not to the same weights."""
    common = ["--data", str(photos), "--steps", "4", "-q", *flags(tiny, kind)]
    assert main(["train", "-o", str(tmp_path / "one.safetensors"), "--run-dir", str(tmp_path / "one"), *common]) == 0
    out = torchrun(["train", "-o", str(tmp_path / "two.safetensors"), "--run-dir", str(tmp_path / "two"), *common])
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_network(tmp_path / "one.safetensors", tmp_path / "two.safetensors")
    assert [c.step for c in list_checkpoints(tmp_path / "two")] == [4, 2]  # rank 0's, once each
    logs = [[r["losses"] for r in read_log(tmp_path / run)] for run in ("one", "two")]
    for one, two in zip(*logs, strict=True):  # the whole batch's losses, not rank 0's half
        assert one.keys() == two.keys() and all(abs(two[k] - one[k]) <= 1e-3 * abs(one[k]) for k in one), (one, two)


def test_a_run_resumes_on_another_number_of_processes(tmp_path, photos, tiny):
    common = ["--data", str(photos), "-q", *flags(tiny)]
    assert main(["train", "-o", str(tmp_path / "one.safetensors"), "--run-dir", str(tmp_path / "one"),
                 "--steps", "4", *common]) == 0
    run = ["-o", str(tmp_path / "mixed.safetensors"), "--run-dir", str(tmp_path / "mixed")]
    out = torchrun(["train", *run, "--steps", "4", "--time-limit", "1e-9", *common])  # stops after step 1
    assert out.returncode == 0, out.stderr[-3000:]
    assert [c.step for c in list_checkpoints(tmp_path / "mixed")] == [1]
    assert main(["train", *run, "--steps", "4", "--resume", *common]) == 0  # one process finishes it
    assert_same_network(tmp_path / "one.safetensors", tmp_path / "mixed.safetensors")


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
