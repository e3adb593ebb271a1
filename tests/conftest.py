"""What every test layer needs: the project's logging, and the `logs` capture fixture.

The end-to-end fixtures (ECS emulator, Temporal dev server, worker) are in
`tests/e2e/conftest.py`, so the unit and workflow layers start neither.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_canary.logs import configure_logging
from tests.helpers import LogCapture


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.attach()
    yield capture
    capture.detach()
