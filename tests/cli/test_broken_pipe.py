"""A reader that closes the pipe early (`brushwork models | head -1`) is not an error of ours."""

import subprocess
import sys


def test_closed_stdout_pipe_is_not_an_internal_error():
    proc = subprocess.Popen([sys.executable, "-m", "brushwork.cli", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # no reader: every write to stdout fails with EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "internal error" not in err and "Traceback" not in err, err
    assert proc.returncode == 141
