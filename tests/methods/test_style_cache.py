"""The caches of the stylize methods: bounded, and a model is loaded once however many ask at once."""

import threading
import time

import pytest

from brushwork.methods.style_cache import LRUCache, file_stamp


def test_lru_cache_forgets_the_least_recently_used():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_concurrent_misses_build_once_and_other_keys_do_not_wait():
    cache = LRUCache(4)
    builds, started = [], threading.Event()

    def slow_build():
        builds.append("slow")
        started.set()
        time.sleep(0.3)
        return "model"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build("m", slow_build))) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait(5)
    begin = time.perf_counter()
    assert cache.get_or_build("other", lambda: "fast") == "fast"
    assert time.perf_counter() - begin < 0.2  # not behind the slow build
    for t in threads:
        t.join()
    assert builds == ["slow"] and results == ["model"] * 4


def test_a_failed_build_is_not_cached():
    cache = LRUCache(2)

    def fail():
        raise ValueError("corrupt model")

    with pytest.raises(ValueError):
        cache.get_or_build("m", fail)
    assert cache.get_or_build("m", lambda: "fixed") == "fixed"


def test_file_stamp_changes_when_the_file_is_rewritten(tmp_path):
    p = tmp_path / "model.safetensors"
    p.write_bytes(b"one")
    first = file_stamp(p)
    p.write_bytes(b"three")
    assert first is not None and file_stamp(p) != first
    assert file_stamp(tmp_path / "missing") is None and file_stamp(None) is None
