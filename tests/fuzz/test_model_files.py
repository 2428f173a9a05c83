"""Property tests of model files and style-embedding files: whatever bytes a file holds, and whatever its
metadata or config says, reading and loading it gives a usable network or one `BrushworkError` (what the CLI
prints as one line); never another exception, a hang, or a network far larger than the file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.methods.adain import decoder_from_model
from brushwork.methods.predict import load_arbitrary_model, read_embedding
from brushwork.methods.wct import decoders_from_model
from brushwork.models.networks import load_network
from brushwork.models.registry import read_model

pytest.importorskip("hypothesis")
pytest.importorskip("safetensors")
from fuzzing import fuzz  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from safetensors.torch import save  # noqa: E402

LOADERS = {"feedforward": load_network, "multi": load_network, "adain": decoder_from_model,
           "wct": decoders_from_model, "arbitrary": load_arbitrary_model}


@pytest.fixture(scope="module")
def models(tmp_path_factory, save_tiny_adain, save_tiny_arbitrary, save_tiny_multi):
    """Valid tiny model files of each kind, as bytes."""
    from brushwork.models.registry import save_model
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    d = tmp_path_factory.mktemp("models")
    config = TransformerConfig(width=4, num_residual=1)
    paths = [save_model(d / "ff.safetensors", "feedforward", StyleTransferNet(config).state_dict(),
                        config.to_dict(), {"name": "ff", "steps": 3}),
             save_tiny_adain(d / "adain.safetensors"), save_tiny_arbitrary(d / "arbitrary.safetensors"),
             save_tiny_multi(d / "multi.safetensors")]
    return ModelBytes(p.read_bytes() for p in paths)


class ModelBytes(list):
    def __repr__(self) -> str:  # Hypothesis prints a failing example's arguments: not 40 kB of tensors
        return f"<{len(self)} tiny model files>"


def load(path):
    """Read a model file and load it with its kind's loader: the network(s), or BrushworkError."""
    model = read_model(path)
    assert isinstance(model.config, dict) and isinstance(model.card, dict)
    assert isinstance(model.name, str) and isinstance(model.styles, list)
    model.trained_steps  # noqa: B018  (reads the card's chain of stages)
    loader = LOADERS.get(model.kind)
    if loader is None:
        return model
    return loader(model)


def check(path):
    try:
        load(path)
    except BrushworkError as exc:
        assert str(exc) and "\n" not in str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@fuzz(40)
@given(st.binary(max_size=1024))
def test_arbitrary_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "m.safetensors"
    path.write_bytes(data)
    check(path)


@fuzz(100, deadline_ms=10_000)
@given(st.data())
def test_damaged_model_files(models, tmp_path_factory, draw):
    data = bytearray(draw.draw(st.sampled_from(models)))
    how = draw.draw(st.sampled_from(["truncate", "flip", "header"]))
    if how == "truncate":
        data = data[: draw.draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw.draw(st.integers(1, 6))):
            i = draw.draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw.draw(st.integers(0, 7))
    else:  # the 8-byte header length and the JSON header after it
        header_len = int.from_bytes(data[:8], "little")
        i = draw.draw(st.integers(0, min(header_len + 8, len(data)) - 1))
        data[i] = draw.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("damaged") / "m.safetensors"
    path.write_bytes(bytes(data))
    check(path)


@fuzz(120, deadline_ms=10_000)
@given(st.data())
def test_any_metadata_and_config(models, tmp_path_factory, draw):
    """Intact tensors with metadata of any shape: a config or card that is not a JSON object, fields of the
    wrong type or size (a network of a million channels must be refused, not allocated)."""
    from safetensors import safe_open

    source = tmp_path_factory.mktemp("src") / "m.safetensors"
    source.write_bytes(draw.draw(st.sampled_from(models)))
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config, card = json.loads(meta["config"]), json.loads(meta["card"])
    target = draw.draw(st.sampled_from(["config-field", "config", "card", "card-field", "kind", "raw"]))
    if target == "config-field" and config:
        key = draw.draw(st.sampled_from(sorted(config)))
        config[key] = draw.draw(json_values | st.integers(0, 10**7))
    elif target == "config-field":
        config = draw.draw(json_values)
    elif target == "config":
        config = draw.draw(json_values)
    elif target == "card":
        card = draw.draw(json_values)
    elif target == "card-field":
        card[draw.draw(st.sampled_from(["name", "steps", "init"]))] = draw.draw(json_values)
    elif target == "kind":
        meta["kind"] = draw.draw(st.sampled_from(list(LOADERS)) | st.text(max_size=8))
    meta["config"], meta["card"] = json.dumps(config), json.dumps(card)
    if target == "raw":
        meta[draw.draw(st.sampled_from(["config", "card", "format"]))] = draw.draw(st.text(max_size=20))
    path = tmp_path_factory.mktemp("meta") / "m.safetensors"
    path.write_bytes(save(tensors, metadata=meta))
    check(path)


@fuzz(60)
@given(st.sampled_from(["json", "npy"]), st.data())
def test_embedding_files(kind, draw):
    """`.json` with any JSON (nested, huge, non-numeric) and `.npy` with any dtype, shape or damage."""
    import io
    import tempfile
    from pathlib import Path

    size = 8
    if kind == "json":
        value = draw.draw(json_values | st.lists(st.floats(), min_size=size, max_size=size))
        data = json.dumps(value).encode()
        if draw.draw(st.booleans()):
            data = data[: draw.draw(st.integers(0, len(data)))]
    else:
        dtype = draw.draw(st.sampled_from(["<f4", "<f8", ">f4", "<i4", "u1", "c8", "?", "<U2"]))
        shape = draw.draw(st.sampled_from([(size,), (size, 1), (), (0,), (3,)]))
        buf = io.BytesIO()
        np.save(buf, np.ones(shape, dtype=dtype), allow_pickle=False)
        data = bytearray(buf.getvalue())
        if draw.draw(st.booleans()):
            i = draw.draw(st.integers(0, len(data) - 1))
            data[i] = draw.draw(st.integers(0, 255))
        data = bytes(data)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"style.{kind}"
        path.write_bytes(data)
        try:
            values = read_embedding(path, size)
        except BrushworkError as exc:
            assert "\n" not in str(exc)
            return
    assert values.shape == (size,) and values.dtype == torch.float32 and torch.isfinite(values).all()


def test_embedding_files_that_would_exhaust_memory_or_the_stack(tmp_path):
    """A JSON nested deeper than Python's stack, and an .npy header claiming ten billion numbers."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BrushworkError, match="not a style embedding"):
        read_embedding(deep, 8)
    huge = tmp_path / "huge.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10000000000,), }"
    huge.write_bytes(b"\x93NUMPY\x01\x00" + len(header.ljust(118) + "\n").to_bytes(2, "little")
                     + (header.ljust(118) + "\n").encode() + b"\0" * 32)
    with pytest.raises(BrushworkError, match="huge.npy"):
        read_embedding(huge, 8)
    assert math.isfinite(read_embedding_ok(tmp_path))


def read_embedding_ok(tmp_path) -> float:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([0.5] * 8))
    return float(read_embedding(good, 8).sum())


def test_an_npy_header_numpy_cannot_parse(tmp_path):
    """Found by the hunt: a NUL in the header made NumPy's header parser raise SyntaxError (TokenError for
    other bytes), neither of them a ValueError."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ones(8, "<f4"), allow_pickle=False)
    for byte in (0, ord("(")):
        data = bytearray(buf.getvalue())
        data[10] = byte
        path = tmp_path / "style.npy"
        path.write_bytes(bytes(data))
        with pytest.raises(BrushworkError, match="header is damaged"):
            read_embedding(path, 8)
