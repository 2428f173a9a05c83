"""`brushwork train` and `brushwork models` from the command line."""

import json
import os

import pytest

from brushwork.cli.main import main
from brushwork.models.registry import read_model
from brushwork.training import list_checkpoints


def _flags(tiny):
    out = []
    for k, v in tiny.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def test_train_end_to_end_writes_a_model_with_a_card(tmp_path, photos, tiny, capsys):
    out = tmp_path / "models" / "tiny.safetensors"
    # --keep-checkpoints 3 keeps every one of the 3 steps' checkpoints (the default keeps the newest 2).
    code = main(["train", "--data", str(photos), "-o", str(out), "--steps", "3", "--name", "tiny-test",
                 "--run-dir", str(tmp_path / "run"), *_flags({**tiny, "checkpoint_every": 1}),
                 "--keep-checkpoints", "3"])
    assert code == 0, capsys.readouterr().err
    assert [c.step for c in list_checkpoints(tmp_path / "run")] == [3, 2, 1]
    model = read_model(out)
    assert model.kind == "feedforward"
    assert model.card["name"] == "tiny-test" and model.card["steps"] == 3
    assert model.card["style"]["title"] == "The Starry Night"
    assert (tmp_path / "run" / "log.jsonl").is_file() and (tmp_path / "run" / "card.json").is_file()
    assert "wrote" in capsys.readouterr().err


def test_train_bad_options_exit_1_with_one_line(tmp_path, photos, tiny, capsys):
    code = main(["train", "--data", str(photos), "-o", str(tmp_path / "m.safetensors"),
                 *_flags({**tiny, "style": "starry-night", "kind": "watercolour"})])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("brushwork: error: unknown kind 'watercolour'") and "feedforward" in err
    assert len(err.splitlines()) == 1

    code = main(["train", "--data", str(photos), "-o", str(tmp_path / "m.safetensors"), *_flags(tiny),
                 "--keep-checkpoints", "0"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err == "brushwork: error: keep checkpoints must be at least 1, got 0"
    code = main(["train", "--data", str(photos), "-o", str(tmp_path / "m.safetensors"), *_flags(tiny),
                 "--clip-gradient", "0.5"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err == "brushwork: error: gradient clipping must be 0 (off) or at least 1, got 0.5"

    code = main(["train", "--style", "starry-night", "--data", str(tmp_path / "missing"),
                 "-o", str(tmp_path / "m.safetensors")])
    assert code == 1
    assert "training data folder not found" in capsys.readouterr().err


def test_models_lists_presets_as_table_and_json(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "Style presets" in text and "starry-night" in text and "Vincent van Gogh" in text
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"models", "styles"} <= set(data)
    assert any(s["name"] == "great-wave" and s["artist"] == "Katsushika Hokusai" for s in data["styles"])
    # What `--style NAME` alone paints each preset with (the shipped models): its own model, the multi-style
    # model's row for a painting only that one trained on, else the any-style method.
    painted_by = {s["name"]: s["painted_by"] for s in data["styles"]}
    assert painted_by["starry-night"] == "starry-night"
    assert painted_by["bedroom-in-arles"] == "multi-paintings (its row)"
    assert painted_by["water-lilies"] == "predict (any style)"  # Magenta's network, built in
    for m in data["models"]:
        assert {"name", "kind", "what", "style", "steps", "image_size", "recipe"} <= set(m)
    # The built-in networks are listed with what they are, and the 26-style network's styles by name.
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["magenta-arbitrary"]["kind"] == "arbitrary" and by_name["magenta-arbitrary"]["file"] is None
    assert by_name["adain"]["what"].startswith("CPU-trained")
    network = {s["name"]: s["model"] for s in data["network_styles"]}
    assert len(network) == 26 and network["swirling-blue"] == "magenta-26"


def test_sigterm_to_every_process_of_a_run_with_loader_processes_saves_a_checkpoint(tmp_path, photos, tiny):
    """`kill` of the whole process group (Ctrl-C in a terminal, a service stop) also reaches the loader
    processes: the trainer must still stop cleanly with a checkpoint, not crash on a dead loader."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "brushwork.cli", "train", "--data", str(photos), "-o", str(tmp_path / "m.safetensors"),
           "--steps", "100000", "--log-every", "1", "--num-workers", "2", "--threads", "1", "--run-dir", str(run),
           *_flags(tiny)]
    proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not ((run / "log.jsonl").is_file() and (run / "log.jsonl").read_text()):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "internal error" not in err
    assert list((run / "checkpoints").glob("step-*.json"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds the file being synced through /proc")
def test_a_full_disk_while_training_is_one_line_and_keeps_the_old_model(tmp_path, photos, tiny, capsys, monkeypatch):
    """A checkpoint or the model failing to write (ENOSPC) stops `brushwork train` with exit 1 and one line
    naming the file, leaves the model that was there and no temporary files."""
    import errno

    out = tmp_path / "m.safetensors"
    out.write_bytes(b"the old model")
    real_fsync = os.fsync

    def disk_full(fd):
        if "checkpoints" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full)
    run = tmp_path / "run"
    code = main(["train", "--data", str(photos), "-o", str(out), "--steps", "2", "--run-dir", str(run),
                 *_flags({**tiny, "checkpoint_every": 1})])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write checkpoint" in err[0] and err[0].endswith("no space left on device")
    assert out.read_bytes() == b"the old model"
    assert not [p for p in tmp_path.rglob(".*") if ".tmp" in p.name]


def test_sigkill_at_random_moments_resumes_from_the_last_complete_checkpoint(tmp_path, photos, tiny):
    """`kill -9` at random moments of a run that checkpoints every step, so that some kills land while a
    checkpoint is being written: after each, every checkpoint left is complete and verifies, `--resume`
    continues from the newest, and the final model is bit-for-bit the uninterrupted run's."""
    import random
    import subprocess
    import sys
    import time
    from pathlib import Path

    import torch
    from fuzzing import SCALE

    from brushwork.training.loop import read_checkpoint_tensors, read_log

    root = Path(__file__).resolve().parents[2]
    planned = 3 * SCALE
    steps = 8 * planned
    common = ["--data", str(photos), "--steps", str(steps), *_flags({**tiny, "checkpoint_every": 1})]
    assert main(["train", "-o", str(tmp_path / "straight.safetensors"), "--run-dir", str(tmp_path / "straight"),
                 "-q", *common]) == 0
    out, run = tmp_path / "killed.safetensors", tmp_path / "killed"
    cmd = [sys.executable, "-m", "brushwork.cli", "train", "-o", str(out), "--run-dir", str(run), "-q", *common]
    rng = random.Random(54)
    kills = mid_write = 0
    for _ in range(planned + 5):
        resumed_from = max((c.step for c in list_checkpoints(run)), default=0)
        proc = subprocess.Popen([*cmd, *(["--resume"] if resumed_from else [])], cwd=root,
                                env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if kills < planned:
            deadline = time.time() + 240  # training under way again: a step past the one resumed from
            while proc.poll() is None and time.time() < deadline and not any(
                    r["step"] > resumed_from for r in read_log(run)):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
        if kills < planned and proc.poll() is None:
            proc.kill()
            proc.communicate()
            kills += 1
            mid_write += any(".tmp" in p.name for p in run.rglob(".*"))
            for checkpoint in list_checkpoints(run):  # whatever the moment, what is listed is whole
                read_checkpoint_tensors(checkpoint)
            continue
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        break
    assert kills == planned
    print(f"{kills} kills, {mid_write} of them while a file was being written")  # shown with pytest -s
    a, b = read_model(tmp_path / "straight.safetensors").tensors, read_model(out).tensors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in read_log(run)] == list(range(1, steps + 1))
    assert not [p.name for p in run.rglob(".*") if ".tmp" in p.name]  # the killed writes' files are cleaned up


@pytest.mark.parametrize("failing_write", [1, 2, 4, 7])
def test_a_disk_that_fills_at_any_write_fails_in_one_line_and_resumes_exactly(tmp_path, photos, tiny, capsys,
                                                                              monkeypatch, failing_write):
    """The disk fills at the Nth file made durable (checkpoint tensors, their JSON, the log rewrite...) and
    every write after it fails too: one line, exit 1, no temporary files, every checkpoint already written
    intact; with space again, `--resume` finishes with the uninterrupted run's model."""
    import errno

    import torch

    from brushwork.training.loop import read_checkpoint_tensors

    common = ["--data", str(photos), "--steps", "5", "-q", *_flags({**tiny, "checkpoint_every": 1})]
    assert main(["train", "-o", str(tmp_path / "straight.safetensors"), "--run-dir", str(tmp_path / "straight"),
                 *common]) == 0
    capsys.readouterr()
    real_fsync, real_open = os.fsync, open
    calls = [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] >= failing_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    def log_open(file, mode="r", *args, **kwargs):  # the log is appended to, not written atomically
        if calls[0] >= failing_write and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    out, run = tmp_path / "full.safetensors", tmp_path / "full"
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        m.setattr("builtins.open", log_open)
        code = main(["train", "-o", str(out), "--run-dir", str(run), *common])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].endswith("no space left on device"), err
    assert "internal error" not in err[0]
    assert not [p for p in tmp_path.rglob(".*") if ".tmp" in p.name]
    for checkpoint in list_checkpoints(run):
        read_checkpoint_tensors(checkpoint)
    resume = ["--resume"] if list_checkpoints(run) else []
    assert main(["train", "-o", str(out), "--run-dir", str(run), *resume, *common]) == 0
    a, b = read_model(tmp_path / "straight.safetensors").tensors, read_model(out).tensors
    assert all(torch.equal(a[k], b[k]) for k in a)


_KILL_INSIDE_A_WRITE = r"""
import os, signal, sys
from brushwork.cli.main import main

# SIGKILL this process just before its Nth fsync or rename: inside a write, where a kill at a random moment
# rarely lands (a tiny checkpoint takes milliseconds to write).
count, target = [0], int(sys.argv[1])
def killing(real):
    def call(*args, **kwargs):
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
os.fsync, os.replace = killing(os.fsync), killing(os.replace)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("kill_at", [2, 4, 7, 8])  # the log before its rename; a checkpoint's tensors, its JSON
def test_sigkill_inside_a_checkpoint_write_resumes_exactly(tmp_path, photos, tiny, kill_at):
    """Killed between writing a checkpoint file and making it durable, or just before a rename: the half
    written files are never taken for checkpoints, and the resumed run ends with the uninterrupted run's
    model."""
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from brushwork.training.loop import read_checkpoint_tensors

    root = Path(__file__).resolve().parents[2]
    common = ["--data", str(photos), "--steps", "4", "-q", *_flags({**tiny, "checkpoint_every": 1})]
    assert main(["train", "-o", str(tmp_path / "straight.safetensors"), "--run-dir", str(tmp_path / "straight"),
                 *common]) == 0
    out, run = tmp_path / "killed.safetensors", tmp_path / "killed"
    argv = ["train", "-o", str(out), "--run-dir", str(run), *common]
    proc = subprocess.run([sys.executable, "-c", _KILL_INSIDE_A_WRITE, str(kill_at), *argv], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    for checkpoint in list_checkpoints(run):
        read_checkpoint_tensors(checkpoint)
    resume = ["--resume"] if list_checkpoints(run) else []
    assert main([*argv, *resume]) == 0
    a, b = read_model(tmp_path / "straight.safetensors").tensors, read_model(out).tensors
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not [p.name for p in run.rglob(".*") if ".tmp" in p.name]
