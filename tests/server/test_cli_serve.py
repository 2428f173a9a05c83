"""`brushwork serve`: starts on loopback, prints its URL, answers, stops on a signal; bad flags give one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _serve(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "brushwork.cli", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), **kwargs)


def test_serve_prints_its_url_answers_and_stops(model_dir):
    proc = _serve("--port", "0", "--model-dir", str(model_dir))
    lines = []
    try:
        found = {}

        def read():
            for line in proc.stderr:
                lines.append(line)
                m = re.search(r"serving on (http://127\.0\.0\.1:\d+/)", line)
                if m:
                    found["url"] = m.group(1)
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(60)
        assert "url" in found, "".join(lines)
        r = httpx.get(found["url"] + "v1/models", timeout=30)
        # The directory's model, and the built-in ones (Magenta's networks), served by default.
        assert r.status_code == 200
        assert {m["name"] for m in r.json()["models"]} == {"starry-night", "magenta-26", "magenta-arbitrary"}
        assert httpx.get(found["url"], timeout=30).text.startswith("<!doctype html>")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_serve_bad_flags_give_one_line(capsys):
    from brushwork.cli.main import main

    for args, words in ((["--port", "70000"], "port"), (["--workers", "0"], "workers"),
                        (["--max-size", "5"], "max size"), (["--result-ttl", "-1"], "ttl")):
        assert main(["serve", *args]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err
