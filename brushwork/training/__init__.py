"""Layer 6: one training loop (data, Adam, mixed precision, checkpoint/resume, logs, previews),
parameterized by an objective per network kind."""

from brushwork.training.data import BatchStream, CorruptImageWarning, PhotoDataset, list_images
from brushwork.training.kinds import get_kind, kind_names, register_kind
from brushwork.training.loop import LoopOptions, LoopResult, Objective, Trainer, list_checkpoints
from brushwork.training.options import TrainOptions
from brushwork.training.runner import TrainResult, train

__all__ = [
    "BatchStream",
    "CorruptImageWarning",
    "LoopOptions",
    "LoopResult",
    "Objective",
    "PhotoDataset",
    "TrainOptions",
    "TrainResult",
    "Trainer",
    "get_kind",
    "kind_names",
    "list_checkpoints",
    "list_images",
    "register_kind",
    "train",
]
