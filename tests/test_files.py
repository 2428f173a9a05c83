"""Atomic outputs (brushwork.files.atomic_write): all or nothing, one-line errors, no temporary files left,
and the permissions a plain open() would give, or the replaced file's."""

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.files import atomic_write
from brushwork.models.registry import read_model, save_model


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_a_saved_model_is_readable_like_any_new_file_and_a_replaced_one_keeps_its_mode(tmp_path):
    path = tmp_path / "m.safetensors"
    state = {"w": torch.ones(2, 2)}
    save_model(path, "feedforward", state, {}, {"name": "m"})  # the temporary file mkstemp creates is 0600
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(path, 0o640)
    save_model(path, "feedforward", {"w": torch.zeros(2, 2)}, {}, {"name": "m"})
    assert path.stat().st_mode & 0o777 == 0o640
    assert read_model(path).tensors["w"].sum() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_a_failed_write_is_one_line_and_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(BrushworkError) as err:
        with atomic_write(path, "write model") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(err.value) == f"cannot write model {str(path)!r}: no space left on device"
    with pytest.raises(ValueError, match="not an OSError"):  # other errors are the writer's own, unchanged
        with atomic_write(path) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("not an OSError")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(BrushworkError, match="is a directory"):
        with atomic_write(tmp_path):
            pass


def test_concurrent_writers_of_one_output_each_finish_whole(tmp_path):
    """The web server's threads may write the same output at once: each gets its own temporary file, so the
    result is one writer's whole output, never a mix, and nothing is left behind."""
    path = tmp_path / "out.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    errors = []

    def write(data):
        try:
            with atomic_write(path) as tmp:
                with open(tmp, "wb") as f:
                    for k in range(0, len(data), 10_000):
                        f.write(data[k:k + 10_000])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


# Run in a child process whose files may not grow past a few hundred bytes (RLIMIT_FSIZE, with SIGXFSZ
# ignored so that a write fails with EFBIG instead of killing the process): a real write failure inside each
# library's own writer, as a full disk gives, which a raised OSError in the test would not exercise.
# safetensors reports it as a SafetensorError and TorchScript's C++ writer aborts the process.
_WRITERS_UNDER_A_SIZE_LIMIT = r"""
import json, resource, signal, sys
from pathlib import Path
import torch
from brushwork.errors import BrushworkError
from brushwork.imaging.io import save_image
from brushwork.methods.export import export_onnx, export_torchscript
from brushwork.methods.predict import save_embedding
from brushwork.models.registry import save_model
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

torch.manual_seed(0)
net = StyleTransferNet(TransformerConfig(width=8, num_residual=1)).eval()
folder = Path(sys.argv[1])
writers = {
    "model.safetensors": lambda p: save_model(p, "feedforward", net.state_dict(), net.config.to_dict(), {}),
    "model.pt": lambda p: export_torchscript(net, p),
    "model.onnx": lambda p: export_onnx(net, p),
    "image.png": lambda p: save_image(torch.rand(3, 64, 64), p),
    "style.npy": lambda p: save_embedding(torch.rand(100), p),
    "style.json": lambda p: save_embedding(torch.rand(100), p),
}
for name in writers:
    (folder / name).write_bytes(b"old")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (256, resource.RLIM_INFINITY))
errors = {}
for name, write in writers.items():
    try:
        write(folder / name)
        errors[name] = None
    except BrushworkError as exc:
        errors[name] = str(exc)
print(json.dumps(errors))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as Linux applies them")
def test_every_writer_turns_a_real_write_failure_into_one_line_and_keeps_the_old_file(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", _WRITERS_UNDER_A_SIZE_LIMIT, str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    errors = json.loads(proc.stdout.splitlines()[-1])
    for name, message in errors.items():
        assert message is not None and message.endswith(": file too large") and "\n" not in message, (name, message)
        assert str(tmp_path / name) in message
        assert (tmp_path / name).read_bytes() == b"old", name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(errors)  # no temporary file left behind


def test_cached_bytes_builds_once_and_survives_an_unwritable_cache(tmp_path, monkeypatch):
    from brushwork.files import cache_dir, cached_bytes

    monkeypatch.setenv("BRUSHWORK_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    calls = []

    def build():
        calls.append(1)
        return b"graph"

    assert cached_bytes("onnx", "a.onnx", build) == b"graph"
    assert cached_bytes("onnx", "a.onnx", build) == b"graph" and len(calls) == 1
    assert (tmp_path / "cache" / "onnx" / "a.onnx").read_bytes() == b"graph"
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    monkeypatch.setenv("BRUSHWORK_CACHE_DIR", str(tmp_path / "blocked"))
    assert cached_bytes("onnx", "b.onnx", build) == b"graph" and len(calls) == 2  # built, not kept: no error
