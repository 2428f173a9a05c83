"""Model files (safetensors with a card in the metadata) and the registry of shipped models."""

from brushwork.models.registry import (
    ModelFile,
    find_model,
    load_state_strict,
    read_model,
    save_model,
    shipped_models,
    weights_dir,
)

__all__ = ["ModelFile", "find_model", "load_state_strict", "read_model", "save_model", "shipped_models", "weights_dir"]
