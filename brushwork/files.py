"""Finishing an atomic write: every output (image, model, checkpoint, export, embedding, video) is written
to a temporary file beside its destination and renamed over it only once complete, so a failure never
leaves a half-written file or destroys the one that was there."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished TMP over PATH, giving it PATH's permissions when PATH exists, else those a plain
    open() would (0666 less the umask). Writers that create their temporary file privately (mkstemp,
    safetensors' save_file: 0600) would otherwise leave outputs only their owner can read."""
    os.chmod(tmp, _new_file_mode(Path(path)))
    os.replace(tmp, path)


def _new_file_mode(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777  # keep what the file being replaced had
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Reading the umask via os.umask() briefly changes it for every thread; /proc does not.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
