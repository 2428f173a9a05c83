"""Training kinds `multi` and `arbitrary` on tiny images: model files, --init, resume, the predictor learns."""

import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.models.registry import read_model
from brushwork.training import TrainOptions, train

STYLES = "starry-night,great-wave,udnie"


def _options(tmp_path, photos, tiny, name, **kw):
    base = {**tiny, "style": None, "styles": STYLES, "data": str(photos),
            "output": str(tmp_path / f"{name}.safetensors")}
    return TrainOptions(**{**base, **kw})


def test_multi_model_file_names_its_styles_and_trains_them_round_robin(tmp_path, photos, tiny, vgg):
    result = train(_options(tmp_path, photos, tiny, "multi", kind="multi", steps=3), vgg=vgg)
    model = read_model(result.output)
    assert model.kind == "multi" and model.styles == ["starry-night", "great-wave", "udnie"]
    assert model.config["num_styles"] == 3 and model.tensors["norm1.scale"].shape == (3, 8)
    assert [s["title"] for s in model.card["styles"]] == ["The Starry Night", "The Great Wave off Kanagawa", "Udnie"]
    # Every style's norm rows were trained (each moved away from the initial ones and zeros).
    assert (model.tensors["norm1.scale"] - 1).abs().amax(dim=1).min() > 0


def test_multi_init_from_a_single_style_network_copies_its_norm_row_to_every_style(tmp_path, photos, tiny, vgg):
    single = train(TrainOptions(**{**tiny, "data": str(photos), "output": str(tmp_path / "one.safetensors"),
                                   "steps": 1, "style_weight": 0.0}), vgg=vgg)
    from brushwork.runtime import resolve_runtime
    from brushwork.training.multi import MultiStyleObjective

    objective = MultiStyleObjective(_options(tmp_path, photos, tiny, "m", kind="multi"), vgg,
                                    resolve_runtime("cpu", "fp32"))
    source = read_model(single.output)
    objective.load_model_state(source)
    state = objective.net.state_dict()
    for key in ("norm1.scale", "residuals.0.norm2.shift"):
        assert torch.equal(state[key], source.tensors[key].expand(3, -1))
    assert torch.equal(state["conv1.conv.weight"], source.tensors["conv1.conv.weight"])


@pytest.mark.parametrize("kind", ["multi", "arbitrary"])
def test_resume_matches_an_uninterrupted_run(tmp_path, photos, tiny, vgg, kind, model_from_checkpoint):
    common = dict(kind=kind, steps=3, checkpoint_every=1, log_every=1)
    straight = train(_options(tmp_path, photos, tiny, "straight", **common), vgg=vgg)
    # recipes/model_from_checkpoint.py names every module's weights as the model file does (the arbitrary
    # model's `net.` and `predictor.`): from the last checkpoint, the run's own model, tensor for tensor.
    copy = tmp_path / "from-checkpoint.safetensors"
    assert model_from_checkpoint.main([str(straight.output), str(straight.loop.run_dir), str(copy)]) == 0
    assert read_model(copy).tensors.keys() == read_model(straight.output).tensors.keys()
    for k, v in read_model(straight.output).tensors.items():
        assert torch.equal(read_model(copy).tensors[k], v), k

    def cancel_at_2(p):
        if p.step == 2:
            raise KeyboardInterrupt

    opts = _options(tmp_path, photos, tiny, "resumed", **common)
    first = train(opts, progress=cancel_at_2, vgg=vgg)
    assert first.interrupted and first.loop.step == 2
    # Scramble every RNG: the resumed run must take its state from the checkpoint, not from here.
    torch.manual_seed(12345)
    train(opts, resume=True, vgg=vgg)
    a = read_model(tmp_path / "straight.safetensors").tensors
    b = read_model(tmp_path / "resumed.safetensors").tensors
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_runs_forked_from_one_model_average_into_a_working_model(tmp_path, photos, tiny, vgg, average_models):
    parent = train(_options(tmp_path, photos, tiny, "parent", kind="multi", steps=1), vgg=vgg).output
    # The second fork draws udnie twice per round: runs on different schedules may be averaged.
    forks = [train(_options(tmp_path, photos, tiny, f"fork{seed}", kind="multi", steps=seed, seed=seed,
                            init=str(parent), style_repeat=repeat), vgg=vgg).output
             for seed, repeat in ((1, None), (2, "udnie:2"))]
    out = tmp_path / "soup.safetensors"
    assert average_models.main([str(out), *map(str, forks)]) == 0
    soup, a, b = read_model(out), read_model(forks[0]), read_model(forks[1])
    assert soup.kind == "multi" and soup.config == a.config
    assert not torch.equal(a.tensors["norm1.scale"], b.tensors["norm1.scale"])
    for k, v in soup.tensors.items():
        torch.testing.assert_close(v, (a.tensors[k] + b.tensors[k]) / 2, msg=k)
    assert [r["seed"] for r in soup.card["averaged"]] == [1, 2]
    # Each run's schedule is in its entry; the soup's card claims none of them as its own.
    assert [r["style_repeat"] for r in soup.card["averaged"]] == [None, {"udnie": 2}]
    assert "style_repeat" not in soup.card
    assert soup.card["steps"] == 2 and soup.card["init"] == a.card["init"]
    assert soup.trained_steps == 3  # the parent's step, then the longer branch's two

    from PIL import Image

    import brushwork
    out_image = brushwork.stylize(Image.new("RGB", (40, 36), (90, 140, 200)), "udnie", model=str(out))
    assert out_image.size == (40, 36)

    # Refused, with one line each: a model and its own parent (different inits), a run with itself, a
    # file that exists (left as it was).
    refusals = [([str(tmp_path / "x.safetensors"), str(forks[0]), str(parent)], "not continued from the same model"),
                ([str(tmp_path / "y.safetensors"), str(forks[0]), str(forks[0])], "same run"),
                ([str(out), *map(str, forks)], "exists")]
    before = out.read_bytes()
    for argv, message in refusals:
        with pytest.raises(BrushworkError, match=message):
            average_models.average_models(argv[0], argv[1:])
    assert out.read_bytes() == before


def test_the_predictor_tells_two_styles_apart_after_a_few_steps(tmp_path, photos, tiny, vgg):
    result = train(_options(tmp_path, photos, tiny, "arb", kind="arbitrary", steps=4, embedding_size=16,
                            learning_rate=1e-3), vgg=vgg)
    model = read_model(result.output)
    assert model.kind == "arbitrary" and model.config["predictor"]["embedding_size"] == 16
    assert [s["name"] for s in model.card["training_styles"]] == STYLES.split(",")

    from brushwork.methods.predict import PredictStylizer

    predictor = PredictStylizer(model, device="cpu", precision="fp32", vgg=vgg)
    starry, wave = predictor.embed_style("starry-night"), predictor.embed_style("great-wave")
    assert starry.shape == (16,)
    assert (starry - wave).norm() > 1e-3 * (starry.norm() + wave.norm())
    # Different embeddings give different norm parameters, hence different stylizations.
    a, b = predictor.norm_params(starry), predictor.norm_params(wave)
    assert max(float((x[0] - y[0]).abs().max()) for x, y in zip(a, b)) > 0


def test_arbitrary_init_from_a_feed_forward_network(tmp_path, photos, tiny, vgg):
    single = train(TrainOptions(**{**tiny, "data": str(photos), "output": str(tmp_path / "one.safetensors"),
                                   "steps": 1, "style_weight": 0.0}), vgg=vgg)
    from brushwork.nets.style_predictor import flat_norm_params
    from brushwork.runtime import resolve_runtime
    from brushwork.training.arbitrary import ArbitraryStyleObjective

    objective = ArbitraryStyleObjective(_options(tmp_path, photos, tiny, "a", kind="arbitrary"), vgg,
                                        resolve_runtime("cpu", "fp32"))
    objective.load_model_state(read_model(single.output))
    assert torch.equal(objective.predictor.to_params.bias, flat_norm_params(objective.net.norm_layers()))
    # The transformer's own norm rows are not trained: the predictor supplies them.
    trained = {id(p) for p in objective.parameters()}
    assert id(objective.net.norm1.scale) not in trained and id(objective.predictor.to_params.bias) in trained


def test_arbitrary_init_from_a_multi_style_model_fits_the_predictor_to_its_table(tmp_path, photos, tiny, vgg,
                                                                                  one_torch_thread):
    """The multi-style model's convolutions are taken over, and the predictor maps each shared painting
    to that painting's row of the norm-parameter table; a style the multi model lacks is simply not fitted."""
    multi = train(_options(tmp_path, photos, tiny, "multi", kind="multi", steps=3, styles="starry-night,great-wave"),
                  vgg=vgg)
    from brushwork.nets.style_predictor import style_statistics
    from brushwork.runtime import resolve_runtime
    from brushwork.training.arbitrary import ArbitraryStyleObjective

    objective = ArbitraryStyleObjective(_options(tmp_path, photos, tiny, "a", kind="arbitrary"), vgg,
                                        resolve_runtime("cpu", "fp32"))
    source = read_model(multi.output)
    objective.load_model_state(source)
    state = objective.net.state_dict()
    assert torch.equal(state["conv1.conv.weight"], source.tensors["conv1.conv.weight"])
    assert objective.predictor_fit["paintings"] == ["starry-night", "great-wave"]  # udnie: not in the table
    assert objective.card()["predictor_fit"]["relative_residual"] < 0.05
    size = tiny["style_size"]
    from brushwork.imaging import resize

    for painting, row in zip(objective.paintings[:2], range(2)):
        whole = resize(painting[None], (size, size)).clamp(0, 1)
        with torch.no_grad():
            params = objective.predictor(style_statistics(vgg, whole))[0]
        expected = torch.cat([t for key in ("norm1", "norm2") for t in (source.tensors[f"{key}.scale"][row],
                                                                         source.tensors[f"{key}.shift"][row])])
        got = params[: expected.numel()]
        assert (got - expected).abs().max() < 0.1 * expected.abs().max()

    other = ArbitraryStyleObjective(_options(tmp_path, photos, tiny, "b", kind="arbitrary", styles="udnie,the-scream"),
                                    vgg, resolve_runtime("cpu", "fp32"))
    with pytest.raises(BrushworkError, match="fewer than two paintings"):
        other.load_model_state(source)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(kind="multi", styles=None), "--styles is needed"),
        (dict(kind="arbitrary", styles=""), "--styles is needed"),
        (dict(kind="multi", styles="starry-night,no-such-painting"), "unknown style"),
        (dict(kind="multi", styles="starry-night,starry-night"), "both named"),
        (dict(kind="arbitrary", photo_styles=1.5), "photo styles"),
        (dict(kind="multi", train_styles="udnie,water-lilies"),
         r"--train-styles names 'water-lilies': it takes names among the --styles \(starry-night, great-wave, udnie\)"),
        (dict(kind="multi", train_styles=" , "), "--train-styles names no style: it takes names among"),
        (dict(kind="multi", norm_only=True), "--norm-only needs --init"),
        (dict(kind="feedforward", style="udnie", train_styles="udnie"), "are for --kind multi"),
        (dict(kind="feedforward", style="udnie", style_repeat="udnie:2"), "are for --kind multi"),
        (dict(kind="multi", style_repeat="udnie"), "--style-repeat takes NAME:N with N a whole number from 1 to 100, "
                                                   "got 'udnie'"),
        (dict(kind="multi", style_repeat="udnie:0"), "--style-repeat takes NAME:N"),
        (dict(kind="multi", style_repeat="udnie:1.5"), "--style-repeat takes NAME:N"),
        (dict(kind="multi", style_repeat="water-lilies:2"), "--style-repeat names 'water-lilies': it takes names"),
        (dict(kind="multi", train_styles="great-wave", style_repeat="udnie:2"),
         "--style-repeat names 'udnie', which --train-styles leaves out"),
    ],
)
def test_bad_many_style_options(tmp_path, photos, tiny, vgg, change, message):
    with pytest.raises(BrushworkError, match=message):
        train(_options(tmp_path, photos, tiny, "bad", **{"steps": 1, **change}), vgg=vgg)


def test_style_repeat_draws_a_style_that_often_per_round_spread_apart_and_the_card_says_so(tmp_path, photos, tiny,
                                                                                           vgg):
    from brushwork.runtime import resolve_runtime
    from brushwork.training.multi import MultiStyleObjective, weighted_round

    # Even weights keep the plain round robin (so runs from before the option resume unchanged).
    assert weighted_round([(7, 1), (3, 1), (5, 1)]) == [7, 3, 5]
    spread = weighted_round([(0, 3), (1, 1), (2, 1), (3, 1), (4, 1), (5, 3)])
    assert sorted(spread) == [0, 0, 0, 1, 2, 3, 4, 5, 5, 5]
    assert all(a != b for a, b in zip(spread, spread[1:] + spread[:1]))  # no style twice in a row, round on round

    options = _options(tmp_path, photos, tiny, "r", kind="multi", style_repeat="udnie:2", batch_size=2)
    objective = MultiStyleObjective(options, vgg, resolve_runtime("cpu", "fp32"))
    drawn = torch.cat([objective.styles_for_step(step, 2) for step in range(4)]).tolist()
    assert [drawn.count(i) for i in range(3)] == [2, 2, 4]  # two rounds of four: udnie twice in each
    assert all(drawn[2 * k] != drawn[2 * k + 1] for k in range(4))  # no step trains one style twice
    assert objective.card()["style_repeat"] == {"udnie": 2}
    # One way to name the plain schedule: N=1 is the default, and the card says nothing of it.
    plain = MultiStyleObjective(_options(tmp_path, photos, tiny, "p", kind="multi", style_repeat="udnie:1"), vgg,
                                resolve_runtime("cpu", "fp32"))
    assert plain.round == [0, 1, 2] and "style_repeat" not in plain.card()

    repeated = _options(tmp_path, photos, tiny, "rep", kind="multi", steps=2, style_repeat="udnie:3",
                        checkpoint_every=1)
    result = train(repeated, vgg=vgg)
    assert read_model(result.output).card["style_repeat"] == {"udnie": 3}
    # The schedule is part of what a checkpoint resumes: another one is refused, not silently mixed in.
    with pytest.raises(BrushworkError, match="style_repeat"):
        train(repeated, resume=True, steps=3, style_repeat="udnie:2", vgg=vgg)


def test_train_styles_with_norm_only_trains_those_rows_and_leaves_the_rest_exactly(tmp_path, photos, tiny, vgg):
    base = train(_options(tmp_path, photos, tiny, "base", kind="multi", steps=2), vgg=vgg)
    tuned = train(_options(tmp_path, photos, tiny, "tuned", kind="multi", steps=6, init=str(base.output),
                           train_styles="udnie", norm_only=True), vgg=vgg)
    assert tuned.card["trained_styles"] == ["udnie"] and tuned.card["norm_only"] is True
    before, after = read_model(base.output), read_model(tuned.output)
    udnie = before.styles.index("udnie")
    for key, old in before.tensors.items():
        new = after.tensors[key]
        if key.endswith((".scale", ".shift")):
            others = [i for i in range(len(before.styles)) if i != udnie]
            assert torch.equal(new[others], old[others]), key
            assert not torch.equal(new[udnie], old[udnie]), key
        else:
            assert torch.equal(new, old), key  # the shared convolutions are --init's

    # Udnie's loss on a fixed batch fell; starry-night's output is bit for bit the same.
    from brushwork.runtime import resolve_runtime
    from brushwork.training.multi import MultiStyleObjective

    objective = MultiStyleObjective(_options(tmp_path, photos, tiny, "m", kind="multi"), vgg,
                                    resolve_runtime("cpu", "fp32"))
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    losses, outputs = [], []
    for model in (before, after):
        objective.load_model_state(model)
        with torch.no_grad():
            one_hot = torch.nn.functional.one_hot(torch.tensor([udnie, udnie]), 3).float()
            targets = {k: v[[udnie, udnie]] for k, v in objective.style_targets.items()}
            losses.append(float(objective.perceptual_loss(batch, objective.net(batch, one_hot), targets, 100)[0]))
            outputs.append(objective.net(batch, torch.nn.functional.one_hot(torch.tensor([0, 0]), 3).float()))
    assert losses[1] < losses[0]
    assert torch.equal(outputs[0], outputs[1])

