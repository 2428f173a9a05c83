"""Progress reporting: methods call a callback with `Progress`; front ends decide how to show it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Progress:
    step: int  # steps done so far, over all scales
    total: int  # steps planned, over all scales
    losses: dict[str, float] = field(default_factory=dict)
    scale: int = 1  # 1-based index of the current scale
    scales: int = 1
    size: tuple[int, int] = (0, 0)  # (height, width) being optimized
    elapsed: float = 0.0
    # The current image (1 x 3 x H x W in [0, 1]), computed only when a front end asks for it.
    image: Callable[[], torch.Tensor] | None = None


ProgressCallback = Callable[[Progress], None]


class ProgressBar:
    """A tqdm bar showing step, losses and rate; silent when stderr is not a terminal or quiet."""

    def __init__(self, desc: str = "", quiet: bool = False, unit: str = "step"):
        self.quiet = quiet or not sys.stderr.isatty()
        self.desc = desc
        self.unit = unit
        self._bar = None
        self._last = 0

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=p.total, desc=self.desc, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        self._bar.update(p.step - self._last)
        self._last = p.step
        post = {k: f"{v:.4g}" for k, v in p.losses.items()}
        if p.scales > 1:
            post["scale"] = f"{p.scale}/{p.scales} {p.size[1]}x{p.size[0]}"
        self._bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def now() -> float:
    return time.perf_counter()
