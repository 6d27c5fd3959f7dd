"""Short versions of the stress scenarios in tests/stress/ (part of `make test`).

Each scenario runs in its own subprocess with a hard timeout, on fastloop and
on the stdlib loop, with the same checks; `make stress` runs the full sizes.
"""

import pytest
from stress.suite import *  # noqa: F403 - the shared test functions


@pytest.fixture
def stress_size():
    return "short"
