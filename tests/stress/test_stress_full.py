"""Full-size stress scenarios: `make stress` (FASTLOOP_STRESS=full, see conftest.py)."""

import pytest

from stress.suite import *  # noqa: F403 - the shared test functions


@pytest.fixture
def stress_size():
    return "full"
