"""Per-style caches of the arbitrary-style methods (predict, AdaIN, WCT): a style used again, from a
path, an upload or an array, skips the encoder. Keyed by a digest of the pixels the method sees, so
the same painting hits however it arrives; bounded, since a server sees styles without end."""

from __future__ import annotations

import hashlib
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

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

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
