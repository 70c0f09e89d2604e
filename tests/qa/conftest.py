"""The SQuAD dev sample shared by the batching, pipeline and fault tests (see ``tests.qa.sample``)."""

from __future__ import annotations

import pytest

from tests.qa import sample


@pytest.fixture(scope="module")
def dev_sample() -> sample.DevSample:
    return sample.dev_sample()
