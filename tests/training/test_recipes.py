"""The recipes' shell helpers (recipes/lib.sh) that decide how a recipe starts and what it trains against."""

import shlex
import subprocess
import sys
from pathlib import Path

from brushwork.cli.main import main
from brushwork.models.registry import read_model

ROOT = Path(__file__).resolve().parents[2]


def _flags(settings):
    return [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def _start_flags(init: str | None, fresh_lr: str) -> list[str]:
    env_init = f"INIT={shlex.quote(init)} " if init else ""
    return _lib(f'{env_init}gpu_start_point {fresh_lr}; printf "%s\\n" "${{START_FLAGS[@]}}"')


def test_a_gpu_recipe_continues_a_trained_model_in_its_own_architecture(tmp_path, photos, tiny, capsys):
    assert _start_flags(None, "1e-3") == ["--learning-rate", "1e-3", "--seed", "0"]
    trained = tmp_path / "trained.safetensors"
    assert main(["train", "--data", str(photos), "-o", str(trained), "--steps", "1",
                 "--run-dir", str(tmp_path / "run1"), *_flags(tiny)]) == 0  # width 8
    flags = _start_flags(str(trained), "1e-3")
    assert flags[:2] == ["--init", str(trained)] and "--style-ramp" in flags
    assert flags[flags.index("--width") + 1] == "8" and flags[flags.index("--learning-rate") + 1] == "0.0003"
    # The recipe's own flags ask for a full-width network; the start flags, passed after them, win.
    continued = tmp_path / "continued.safetensors"
    code = main(["train", "--data", str(photos), "-o", str(continued), "--steps", "1", "--run-dir",
                 str(tmp_path / "run2"), *_flags({**tiny, "width": 32}), *flags])
    assert code == 0, capsys.readouterr().err
    model = read_model(continued)
    assert model.config["width"] == 8 and model.card["init"]["name"] == "trained"
    assert model.card["learning_rate"] == 3e-4 and model.card["style_ramp"] == 0
    # A continuation's seed counts every stage's steps, so each continuation draws new batches; the GPU
    # recipes' seed comes with the start flags (gpu_flags holds none that would override it).
    assert flags[flags.index("--seed") + 1] == "1" and model.card["seed"] == 1
    assert _lib(f"start_seed {trained}") == ["1"] and _lib(f"start_seed {continued}") == ["2"]
    assert _lib(f"SEED=7 start_seed {continued}") == ["7"] and _lib("start_seed") == ["0"]
    assert "--seed" not in _lib('gpu_flags; printf "%s\\n" "${GPU_FLAGS[@]}"')
    assert _lib(f"INIT={trained} cpu_start_point; echo $seed") == ["1"]


def _lib(command: str) -> list[str]:
    out = subprocess.run(["bash", "-c", f"source recipes/lib.sh; {command}"], cwd=ROOT, capture_output=True,
                         text=True, check=True,
                         env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    return out.stdout.split()


def test_the_256_stage_continues_a_multi_style_model_with_its_styles_in_order(tmp_path, photos, tiny, capsys,
                                                                              save_tiny_multi):
    """feedforward-cpu-256.sh's flags for a multi-style INIT: its own styles, in its order (norm rows are matched
    by position), and the benchmarks' objective from metric_loss_flags."""
    import torch

    multi = read_model(save_tiny_multi(tmp_path / "multi.safetensors"))
    style_flags = _lib(f"model_style_flags {multi.path} ignored")
    assert style_flags == ["--kind", "multi", "--styles", ",".join(multi.config["styles"])]
    loss_flags = _lib('metric_loss_flags; printf "%s\\n" "${LOSS_FLAGS[@]}"')
    settings = {k: v for k, v in tiny.items() if k not in ("style", "width", "num_residual", "kind")}
    out = tmp_path / "continued.safetensors"
    code = main(["train", *style_flags, "--data", str(photos), "-o", str(out), "--steps", "1", "--run-dir",
                 str(tmp_path / "run"), "--init", str(multi.path), *loss_flags, "--warmup-steps", "50",
                 "--learning-rate", "3e-4", *_flags(settings)])
    assert code == 0, capsys.readouterr().err
    continued = read_model(out)
    assert continued.config["styles"] == multi.config["styles"]
    assert continued.config["width"] == multi.config["width"]  # --init's shape, adopted without flags
    assert _lib('partial_training_flags; printf "%s\\n" "${PARTIAL_FLAGS[@]}"') == []
    partial = _lib('TRAIN_STYLES=udnie,great-wave STYLE_REPEAT=udnie:2 NORM_ONLY=1 partial_training_flags; '
                   'printf "%s\\n" "${PARTIAL_FLAGS[@]}"')
    assert partial == ["--train-styles", "udnie,great-wave", "--style-repeat", "udnie:2", "--norm-only"]
    assert set(continued.card["style_layers"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    assert set(continued.card["content_layers"]) == {"relu4_2"} and continued.card["style_weight"] == 15
    # Every style's norm row is (after one warm-up step) still the row it had, not another style's.
    for key, before in multi.tensors.items():
        if key.endswith(".scale"):
            after = continued.tensors[key].float()
            nearest = torch.cdist(after, before.float()).argmin(dim=1)
            assert nearest.tolist() == list(range(before.shape[0])), key


def test_the_held_out_paintings_are_never_linked_for_training(tmp_path):
    """link_training_styles skips every held-out painting, every time: the old `printf | grep -q` test could
    fail at random under pipefail (SIGPIPE), which trained on a held-out painting."""
    held_out = _lib('printf "%s\\n" "${HELD_OUT[@]}"')
    assert held_out
    script = (f'set -euo pipefail; for i in $(seq 20); do rm -rf {tmp_path}/t; '
              f'link_training_styles "$PRESET_STYLES" {tmp_path}/t; ls {tmp_path}/t | wc -l; done')
    counts = set(_lib(script))
    presets = [p for p in (ROOT / "brushwork/assets/styles").iterdir() if p.suffix in (".jpg", ".jpeg", ".png")]
    assert counts == {str(len(presets) - len(held_out))}
    linked = {p.stem for p in (tmp_path / "t").iterdir()}
    assert linked == {p.stem for p in presets} - set(held_out)


def test_run_label_keeps_forked_runs_apart_under_the_models_name():
    """Two runs forked from one model side by side (recipes/average_models.py) need their own folders and
    files; the model they write keeps the name it will ship under."""
    def train_args(env):
        words = _lib(f"{env} WEIGHTS_DIR=cands PYTHON=echo train_model r multi-paintings 0 --steps 1")
        return {flag: words[words.index(flag) + 1] for flag in ("--run-dir", "-o", "--name")}

    assert train_args("") == {"--run-dir": "runs/r/multi-paintings", "-o": "cands/multi-paintings.safetensors",
                              "--name": "multi-paintings"}
    assert train_args("RUN_LABEL=multi-paintings-b") == {
        "--run-dir": "runs/r/multi-paintings-b", "-o": "cands/multi-paintings-b.safetensors",
        "--name": "multi-paintings"}
