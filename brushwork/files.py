"""Atomic writes: every output (image, model, checkpoint, export, embedding, video) is written to a
temporary file beside its destination and renamed over it only once complete, so a failure never leaves
a half-written file or destroys the one that was there, and every failure is one line naming the file."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from brushwork.errors import BrushworkError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, action: str = "write") -> Iterator[Path]:
    """Yield a fresh temporary path beside PATH for the caller to write the whole output to (by name: any
    library's writer works). When the block ends without an error the file is made durable and renamed
    over PATH (see _replace_file); whatever happens, the temporary file is gone afterwards. An OSError, in
    the block or here, becomes the one-line BrushworkError "cannot ACTION 'PATH': reason"; other errors
    pass through unchanged."""
    path = Path(path)
    fail = f"cannot {action} {str(path)!r}"
    if path.is_dir():
        raise BrushworkError(f"{fail}: is a directory")
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp, not a name from the pid: two threads of one process (the web server) may write the
        # same output. The destination's suffix is kept for writers that go by it.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        _fsync(tmp)
        _replace_file(tmp, path)
        tmp = None
    except OSError as exc:
        raise BrushworkError(f"{fail}: {os_reason(exc)}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    _fsync_dir(path.parent)


def write_file_atomically(path: str | os.PathLike, data: bytes, action: str = "write") -> Path:
    """Write DATA to PATH through atomic_write with Python's own file writing. Libraries whose file writers
    fail badly on a full disk serialize to bytes first and write them here, so that the failure is an
    OSError and so the usual one-line error: safetensors raises its own SafetensorError, TorchScript's C++
    writer aborts the process and NumPy's .npy writer truncates the file without an error."""
    with atomic_write(path, action) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _replace_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished TMP over PATH, giving it PATH's permissions when PATH exists, else those a plain
    open() would (0666 less the umask). mkstemp creates the temporary file private (0600), which would
    otherwise leave outputs only their owner can read."""
    os.chmod(tmp, _new_file_mode(Path(path)))
    os.replace(tmp, path)


def os_reason(exc: OSError) -> str:
    """An OSError's reason in a few lower-case words, the same for every platform's wording."""
    known = {
        errno.ENOSPC: "no space left on device",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a parent path is not a directory",
        errno.EISDIR: "is a directory",
    }
    if hasattr(errno, "EDQUOT"):  # not defined on Windows
        known[errno.EDQUOT] = "disk quota exceeded"
    if exc.errno in known:
        return known[exc.errno]
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _fsync(path: Path, flags: int = os.O_RDWR) -> None:
    # The data must be on disk before the rename is: otherwise a crash can leave an empty file where the
    # old one was. Read-write for files, because Windows refuses to fsync a read-only descriptor.
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform or filesystem allows it, and the file is already
    # complete, so a failure here is not worth reporting.
    with contextlib.suppress(OSError, AttributeError):
        _fsync(directory, os.O_RDONLY)


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


def cache_dir() -> Path:
    """Where brushwork keeps what it can rebuild (exported graphs): $BRUSHWORK_CACHE_DIR, else
    $XDG_CACHE_HOME/brushwork, else ~/.cache/brushwork."""
    if os.environ.get("BRUSHWORK_CACHE_DIR"):
        return Path(os.environ["BRUSHWORK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "brushwork"


def cached_bytes(kind: str, key: str, build) -> bytes:
    """`build()`'s bytes, kept in `cache_dir()/KIND/KEY`: read back when there, else built and written
    (atomically). A cache that cannot be read or written only costs the rebuild."""
    path = cache_dir() / kind / key
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = build()
    try:
        write_file_atomically(path, data, "cache")
    except BrushworkError:
        pass
    return data
