"""Model files (safetensors with a card in the metadata), the registry of shipped models, and the
built-in models read from installed packages (Magenta's networks)."""

from brushwork.models.registry import (
    ModelFile,
    builtin_model_names,
    find_model,
    load_state_strict,
    read_model,
    register_builtin_model,
    save_model,
    shipped_models,
    weights_dir,
)
from brushwork.models import magenta

for _name in magenta.MAGENTA_MODELS:
    register_builtin_model(_name, lambda name=_name: magenta.magenta_model(name))

__all__ = ["ModelFile", "builtin_model_names", "find_model", "load_state_strict", "read_model",
           "register_builtin_model", "save_model", "shipped_models", "weights_dir", "magenta"]
