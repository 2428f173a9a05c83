"""Caches of the stylize methods.

- Per style, in the arbitrary-style methods (predict, AdaIN, WCT): a style used again, from a path,
  an upload or an array, skips the encoder. Keyed by a digest of the pixels the method sees
  (`tensor_digest`), so the same painting hits however it arrives; bounded, since a server sees
  styles without end.
- Per model file, of loaded stylizers (`get_or_build`, keyed with `file_stamp`): a front end that
  stylizes again with the same model and settings reuses the loaded networks.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import torch

STYLE_CACHE_SIZE = 4  # styles kept per stylizer: a web page's few recent styles, a video's one


class LRUCache:
    """A small thread-safe map that forgets its least recently used entry beyond `size`."""

    def __init__(self, size: int = STYLE_CACHE_SIZE):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict = {}  # key -> the lock of the one thread building it

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def get_or_build(self, key, build):
        """The value for `key`, made by `build()` on a miss. Concurrent misses on one key build once
        (a server's first requests for a model would otherwise each load it); other keys do not wait."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        try:
            with key_lock:
                value = self.get(key)
                if value is None:
                    value = build()
                    self.put(key, value)
                return value
        finally:
            with self._lock:
                self._building.pop(key, None)

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def tensor_digest(t: torch.Tensor) -> bytes:
    """A digest of a tensor's shape and float32 values."""
    t = t.detach().float().cpu().contiguous()
    h = hashlib.blake2b(repr(tuple(t.shape)).encode(), digest_size=16)
    h.update(t.numpy())
    return h.digest()


def file_stamp(path) -> tuple[int, int] | None:
    """(mtime, size) of a model file, for cache keys: a rewritten file is loaded afresh. None when
    `path` is not a file path (a shipped model's name is found again on each load)."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size
