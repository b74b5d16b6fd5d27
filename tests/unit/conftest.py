"""Fixtures shared by the unit tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were before `configure_logging`."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_StdlibBridge":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("websockets", "asyncio", "PIL"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(False)
