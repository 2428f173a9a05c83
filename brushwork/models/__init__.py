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
from brushwork.nets.magenta import MAGENTA_MODELS, magenta_network

for _name in MAGENTA_MODELS:
    register_builtin_model(_name, lambda name=_name: ModelFile(*magenta_network(name)))

__all__ = ["ModelFile", "builtin_model_names", "find_model", "load_state_strict", "read_model",
           "register_builtin_model", "save_model", "shipped_models", "weights_dir"]
