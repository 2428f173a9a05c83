"""Outputs written atomically get the permissions a plain open() would give, or keep the replaced file's."""

import os

import torch

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
