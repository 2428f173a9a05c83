"""The recipes' shell helpers (recipes/lib.sh) that decide how a GPU recipe starts."""

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
    script = (f"source recipes/lib.sh; {env_init}gpu_start_point {fresh_lr}; "
              'printf "%s\\n" "${START_FLAGS[@]}"')
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    return out.stdout.split()


def test_a_gpu_recipe_continues_a_trained_model_in_its_own_architecture(tmp_path, photos, tiny, capsys):
    assert _start_flags(None, "1e-3") == ["--learning-rate", "1e-3"]
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
