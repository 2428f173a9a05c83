"""Shared settings for the tests that try generated bad input and faults.

Each test names its number of examples (or of faults) for the everyday run, where the whole set takes
seconds; BRUSHWORK_FUZZ_SCALE=N multiplies them for a longer hunt, e.g. before a release:
`BRUSHWORK_FUZZ_SCALE=20 pytest tests/fuzz tests/server/test_server_fuzz.py`. (Here, in tests/, so that every
test folder imports it.)"""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("BRUSHWORK_FUZZ_SCALE", "1")))


def fuzz(examples: int, deadline_ms: int = 2000):
    """Hypothesis settings for one property test: `examples` cases (times SCALE), each within `deadline_ms`;
    derandomized in the everyday run, so that it tries the same cases every time."""
    from hypothesis import HealthCheck, settings  # an optional test dependency: only the property tests need it

    return settings(max_examples=examples * SCALE, deadline=deadline_ms, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
