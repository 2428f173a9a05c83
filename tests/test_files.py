"""Atomic outputs (brushwork.files.atomic_write): all or nothing, one-line errors, no temporary files left,
and the permissions a plain open() would give, or the replaced file's."""

import errno
import os
import threading

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
    save_model(path, "feedforward", state, {}, {"name": "m"})  # safetensors' save_file creates 0600 files
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
