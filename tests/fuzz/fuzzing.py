"""Shared Hypothesis settings for the property tests of outside input.

Each test names its number of examples for the everyday run (the whole set takes seconds);
BRUSHWORK_FUZZ_SCALE=N multiplies them for a longer hunt, e.g. before a release:
`BRUSHWORK_FUZZ_SCALE=20 pytest tests/fuzz tests/server/test_server_fuzz.py`."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("BRUSHWORK_FUZZ_SCALE", "1")))


def fuzz(examples: int, deadline_ms: int = 2000):
    """Settings for one property test: `examples` cases (times SCALE), each within `deadline_ms`."""
    return settings(max_examples=examples * SCALE, deadline=deadline_ms, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
