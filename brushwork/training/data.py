"""Training photos: any folder of images, in a deterministic, resumable order.

The order is a pure function of (seed, epoch, position): each epoch visits every photo once in a
seeded permutation, and each photo's random crop is drawn from a generator seeded by the same
triple. So "batch number k" names exactly the same pixels in every run and in every process, and a
resumed run only has to remember how many batches it has consumed (`BatchStream.position`).

Files that are not images are dropped when the folder is scanned (header check only); files whose
body turns out to be damaged are skipped, with a warning, when they are first decoded, and their
place in the batch goes to the next readable photo of the epoch's order (with a crop of its own).
Which files are unreadable is a property of the files, so the replacement too is a function of the
position: a run resumes identically, every batch keeps its size, and processes that share the batch
(brushwork.distributed) stay in step, each replacing a photo of its share as one process would.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from brushwork.errors import BrushworkError
from brushwork.imaging.io import IMAGE_SUFFIXES

# Training photos are small; anything over this many pixels is a mistake or a decompression bomb.
MAX_TRAINING_PIXELS = 50_000_000


class CorruptImageWarning(UserWarning):
    """A file in the training folder could not be decoded and is skipped."""


def _warn_skip(path, reason: str) -> None:
    message = f"skipping unreadable training image {str(path)!r}: {reason}"
    warnings.warn(message, CorruptImageWarning, stacklevel=3)


def list_images(root: str | os.PathLike, *, check: bool = True) -> list[Path]:
    """Image files under `root` (recursive, sorted, hidden files and folders skipped).

    With `check`, each file's header is opened (cheap: no pixels are decoded) and files that are
    not images are skipped with a `CorruptImageWarning`.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise BrushworkError(f"training data folder not found: {str(root)!r}")
    if not root.is_dir():
        raise BrushworkError(f"training data {str(root)!r} is not a folder of images")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            found.append(Path(dirpath) / name)
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    if check:
        good = []
        for path in found:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Image.open(path) as im:
                        w, h = im.size
                if w < 1 or h < 1 or w * h > MAX_TRAINING_PIXELS:
                    raise ValueError(f"unusable size {w}x{h}")
            except Exception as exc:  # noqa: BLE001 - any failure means "not a usable image"
                _warn_skip(path, _reason(exc))
                continue
            good.append(path)
        found = good
    if not found:
        raise BrushworkError(
            f"no readable images in {str(root)!r} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return found


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def seeded_rng(*parts: int) -> random.Random:
    """A generator seeded by integers, stable across processes and Python runs (string seeds are
    hashed with SHA-512 by `random`, unlike `hash()`, which is salted per process)."""
    return random.Random("brushwork:" + ":".join(str(int(p)) for p in parts))


def load_training_image(path: Path, image_size: int, rng: random.Random) -> torch.Tensor:
    """Decode `path`, resize so its short side is `image_size`, crop a random square: 3 x S x S in [0, 1]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_TRAINING_PIXELS:
                raise ValueError(f"image too large ({w}x{h})")
            scale = image_size / min(w, h)
            if im.format == "JPEG" and scale < 0.5:
                # Let the JPEG decoder shrink by a power of two first: much faster, still >= the target.
                im.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
    w, h = im.size
    scale = image_size / min(w, h)
    new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC, reducing_gap=3.0)
    left = rng.randint(0, new_w - image_size)
    top = rng.randint(0, new_h - image_size)
    im = im.crop((left, top, left + image_size, top + image_size))
    data = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(data.copy()).permute(2, 0, 1).float().div_(255.0)


class PhotoDataset(torch.utils.data.Dataset):
    """Map-style dataset indexed by stream position: item `p` is the photo at position p % n of the
    permutation of epoch p // n, randomly cropped. In place of a damaged file (a warning once), the next
    readable one in that permutation, cropped at random by the position; None if no file can be read."""

    def __init__(self, files: list[Path], image_size: int, seed: int = 0):
        if image_size < 8:
            raise BrushworkError(f"image size must be at least 8 pixels, got {image_size}")
        self.files = list(files)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self._perm_epoch = -1
        self._perm: list[int] = []
        self._bad: set[int] = set()

    def __len__(self) -> int:  # the stream is unbounded; one epoch is len(files)
        return len(self.files)

    def permutation(self, epoch: int) -> list[int]:
        if epoch != self._perm_epoch:
            order = list(range(len(self.files)))
            seeded_rng(self.seed, epoch, 1).shuffle(order)
            self._perm_epoch, self._perm = epoch, order
        return self._perm

    def file_at(self, position: int) -> int:
        epoch, index = divmod(int(position), len(self.files))
        return self.permutation(epoch)[index]

    def __getitem__(self, position: int) -> torch.Tensor | None:
        position = int(position)
        epoch, index = divmod(position, len(self.files))
        order = self.permutation(epoch)
        for offset in range(len(self.files)):
            file_index = order[(index + offset) % len(self.files)]
            if file_index in self._bad:
                continue
            # The photo's own crop; a replacement's is drawn by the position (not the crop of its own slot).
            rng = (seeded_rng(self.seed, epoch, 2, file_index) if offset == 0
                   else seeded_rng(self.seed, epoch, 4, position))
            try:
                return load_training_image(self.files[file_index], self.image_size, rng)
            except Exception as exc:  # noqa: BLE001 - a damaged file must not end a long run
                self._bad.add(file_index)
                _warn_skip(self.files[file_index], _reason(exc))
        return None


def _collate(items: list[torch.Tensor | None]) -> torch.Tensor:
    good = [t for t in items if t is not None]
    if not good:
        return torch.empty(0)
    return torch.stack(good)


class _BatchSampler:
    """Lists of stream positions, one list per batch, from batch number `start` on, forever; with `shard`
    (rank, ranks), the rank-th of that many equal slices of each batch's positions."""

    def __init__(self, batch_size: int, start: int, shard: tuple[int, int] = (0, 1)):
        self.batch_size, self.start = batch_size, start
        rank, ranks = shard
        self.slice = range(rank * batch_size // ranks, (rank + 1) * batch_size // ranks)

    def __iter__(self):
        b = self.start
        while True:
            yield [b * self.batch_size + i for i in self.slice]
            b += 1


def _leave_stop_signals_to_the_trainer(_worker_id: int) -> None:
    """Loader processes ignore Ctrl-C and SIGTERM. A terminal's Ctrl-C reaches the whole process group,
    and `kill` of a job or a service stop often every process: a loader that died of it would crash the
    trainer mid-step instead of letting it save a checkpoint and stop (the loaders end with it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class BatchStream:
    """An endless iterator of N x 3 x S x S batches; `position` counts the batches consumed.

    Create it with `start=k` to continue exactly after batch k-1 of an earlier run. Every batch is
    whole: an unreadable photo is replaced (`PhotoDataset`). With `shard=(rank, ranks)` (training on
    several processes) each batch is this rank's slice of the `batch_size` photos; `position` still
    counts whole batches, the same on every rank.
    """

    def __init__(self, dataset: PhotoDataset, batch_size: int, *, start: int = 0, num_workers: int = 0,
                 shard: tuple[int, int] = (0, 1)):
        if batch_size < 1:
            raise BrushworkError(f"batch size must be at least 1, got {batch_size}")
        if batch_size % shard[1]:
            raise BrushworkError(f"a batch of {batch_size} does not split evenly over {shard[1]} processes: "
                                 f"give a --batch-size that is a multiple of {shard[1]}")
        if num_workers < 0:
            raise BrushworkError(f"number of data workers must be zero or more, got {num_workers}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.position = int(start)
        self.num_workers = num_workers
        # A private generator: DataLoader otherwise draws its base seed from torch's global RNG,
        # which would make a resumed run's RNG stream differ from an uninterrupted one.
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=_BatchSampler(batch_size, self.position, shard),
            collate_fn=_collate,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(0),
            persistent_workers=False,
            prefetch_factor=4 if num_workers > 0 else None,
            worker_init_fn=_leave_stop_signals_to_the_trainer if num_workers > 0 else None,
        )
        self._iter = iter(loader)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        batch = next(self._iter)
        if not batch.numel():  # every file of the folder failed to decode
            raise BrushworkError("none of the training photos could be decoded: check the training folder")
        self.position += 1
        return batch

    def epoch(self) -> float:
        return self.position * self.batch_size / len(self.dataset)


def describe_data(root: str | os.PathLike, count: int) -> dict:
    """The card's description of a training folder: its name and how many photos were used."""
    root = Path(root).expanduser().resolve()
    return {"folder": root.name, "images": int(count)}
