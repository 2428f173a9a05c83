"""`--kind adapt`: only the norm parameters of Magenta's trained network are trained, starting from its
prediction for the painting; the model file holds only them and names its base network."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import brushwork
from brushwork.errors import BrushworkError
from brushwork.models.networks import load_network
from brushwork.models.registry import find_model, read_model, save_model
from brushwork.runtime import resolve_runtime
from brushwork.training.adapt import AdaptObjective, base_network, norm_state
from brushwork.training.options import TrainOptions
from brushwork.training.runner import train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAINTING = "water-lilies"


def _options(tmp_path, photos, **kw):
    settings = dict(kind="adapt", style=PAINTING, data=str(photos), output=str(tmp_path / "mine.safetensors"),
                    image_size=32, batch_size=2, style_size=64, learning_rate=1e-2, preview_every=0, log_every=1,
                    checkpoint_every=0, device="cpu", precision="fp32", threads=1, steps=2)
    settings.update(kw)
    return TrainOptions(**settings)


def _loss_after_steps(objective, steps: int) -> float:
    """The objective's loss on a fixed batch after `steps` Adam steps on it."""
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        objective.loss(batch, step=10)[0].backward()
        optimizer.step()
    return float(objective.loss(batch, step=10)[0].detach())


def test_a_few_steps_lower_the_loss_and_change_only_the_norm_parameters(tmp_path, photos, vgg):
    opts = _options(tmp_path, photos)
    objective = AdaptObjective(opts, vgg, resolve_runtime("cpu", "fp32"))
    base, _ = base_network(find_model("magenta-arbitrary"))
    trained = {id(p) for p in objective.parameters()}
    assert sum(p.numel() for p in objective.parameters()) == 694  # 13 norms: 2 x (10 x 32 + 16 + 8 + 3)
    before = _loss_after_steps(objective, 0)
    assert _loss_after_steps(objective, 5) < before
    for (name, p), (_, q) in zip(objective.net.named_parameters(), base.named_parameters()):
        if id(p) not in trained:
            assert torch.equal(p, q), name  # every convolution exactly as Magenta trained it


def test_embedding_mode_trains_only_the_embedding_and_writes_the_norms_it_maps_to(tmp_path, photos, vgg):
    opts = _options(tmp_path, photos, adapt_params="embedding", steps=3)
    objective = AdaptObjective(opts, vgg, resolve_runtime("cpu", "fp32"))
    assert [p.shape for p in objective.parameters()] == [torch.Size([1, 100])]  # 100 numbers, not 694
    start = objective.embedding.embedding.detach().clone()
    before = _loss_after_steps(objective, 0)
    assert _loss_after_steps(objective, 5) < before
    assert not torch.equal(objective.embedding.embedding, start)
    # The file holds the norm parameters the trained embedding maps to: the network it loads paints as the
    # objective does.
    result = train(opts, vgg=vgg)
    model = read_model(result.output)
    assert set(model.tensors) == set(norm_state(load_network(model)))
    assert "embedding" in model.card["trained"]
    with pytest.raises(BrushworkError, match="--adapt-params must be"):
        AdaptObjective(_options(tmp_path, photos, adapt_params="both"), vgg, resolve_runtime("cpu", "fp32"))


def test_embedding_mode_file_paints_what_training_painted(tmp_path, photos, vgg):
    opts = _options(tmp_path, photos, adapt_params="embedding", steps=2)
    objective = AdaptObjective(opts, vgg, resolve_runtime("cpu", "fp32"))
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = objective.preview(image)
        state = objective.model_state()
    path = save_model(tmp_path / "e.safetensors", "feedforward", state, objective.model_config(), {})
    with torch.no_grad():
        got = load_network(read_model(path))(image).clamp(0, 1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_the_model_file_is_small_round_trips_and_paints_everywhere(tmp_path, photos, vgg):
    result = train(_options(tmp_path, photos), vgg=vgg)
    path = Path(result.output)
    assert path.stat().st_size < 16_000
    model = read_model(path)
    assert model.kind == "feedforward" and model.config["base"] == "magenta-arbitrary"
    assert set(model.tensors) == set(norm_state(load_network(model)))
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    out = brushwork.stylize(photo, str(path), device="cpu", precision="fp32", backend="torch")
    assert out.size == (52, 40)
    fast = brushwork.stylize(photo, str(path), device="cpu", precision="fp32", backend="onnxruntime")
    assert np.abs(np.asarray(out, np.float64) - np.asarray(fast, np.float64)).max() <= 2
    # A file whose tensors do not fit the base it names: one line.
    bad = dict(model.tensors)
    bad["residuals.0.norm1.scale"] = torch.ones(1, 7)
    save_model(tmp_path / "bad.safetensors", "feedforward", bad, model.config, model.card)
    with pytest.raises(BrushworkError, match="does not fit its base network 'magenta-arbitrary'"):
        load_network(read_model(tmp_path / "bad.safetensors"))
    save_model(tmp_path / "nobase.safetensors", "feedforward", dict(model.tensors), {**model.config, "base": "nope"},
               model.card)
    with pytest.raises(BrushworkError, match="no model named 'nope'"):
        load_network(read_model(tmp_path / "nobase.safetensors"))


_RESUME_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from brushwork.training.options import TrainOptions
from brushwork.training.runner import train
result = train(TrainOptions(**json.loads(sys.argv[1])))
print(result.loop.step)
"""


def test_resume_equals_an_uninterrupted_run(tmp_path, photos, vgg):
    common = dict(steps=4, checkpoint_every=2)
    straight = train(_options(tmp_path, photos, output=str(tmp_path / "straight.safetensors"), **common), vgg=vgg)

    def cancel_at_3(p):
        if p.step == 3:
            raise KeyboardInterrupt

    opts = _options(tmp_path, photos, output=str(tmp_path / "resumed.safetensors"), **common)
    assert train(opts, progress=cancel_at_3, vgg=vgg).interrupted
    args = {**opts.to_dict(), "resume": True}
    import json

    out = subprocess.run([sys.executable, "-c", _RESUME_SCRIPT, json.dumps(args)], cwd=str(ROOT),
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    a, b = read_model(straight.output), read_model(tmp_path / "resumed.safetensors")
    assert set(a.tensors) == set(b.tensors)
    for k in a.tensors:
        assert torch.equal(a.tensors[k], b.tensors[k]), k


def test_the_first_preview_already_looks_like_the_paintings_prediction(tmp_path, photos, vgg):
    """Step 0 is the style-prediction network's guess: the same picture `--method predict` paints."""
    opts = _options(tmp_path, photos)
    objective = AdaptObjective(opts, vgg, resolve_runtime("cpu", "fp32"))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first = objective.preview(x)
    predicted = brushwork.stylize_tensor(x, PAINTING, method="predict", device="cpu", precision="fp32",
                                         backend="torch")
    assert (first - predicted).abs().max() < 1e-4


def test_adapt_has_loss_defaults_of_its_own_and_a_given_value_wins(tmp_path, photos, vgg):
    from brushwork.training.options import with_kind_defaults

    adapt = with_kind_defaults(TrainOptions(kind="adapt"))
    assert adapt.style_layers == {f"relu{i}_1": 1.0 for i in range(1, 6)} and adapt.content_layers == {"relu4_2": 1.0}
    assert (adapt.style_weight, adapt.learning_rate, adapt.warmup_steps) == (50.0, 1e-2, 20)
    assert with_kind_defaults(TrainOptions(kind="adapt", style_weight=5.0)).style_weight == 5.0
    assert with_kind_defaults(TrainOptions(kind="feedforward")) == TrainOptions(kind="feedforward")
    # What a run used is what its card says.
    result = train(_options(tmp_path, photos, learning_rate=TrainOptions().learning_rate), vgg=vgg)
    assert result.card["learning_rate"] == 1e-2 and result.card["style_weight"] == 50.0


def test_adapt_stops_by_default_where_its_quality_was_measured_to_peak():
    # Past about 80 steps the subject fades (docs/performance.md); whole networks keep the long default.
    assert TrainOptions(kind="adapt").total_steps(num_images=10) == 80
    assert TrainOptions(kind="adapt", steps=500).total_steps(num_images=10) == 500
    assert TrainOptions(kind="feedforward").total_steps(num_images=10) == 20000

