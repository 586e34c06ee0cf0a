"""Leave logging as it was found: these tests configure it for real."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

import cmis_core.logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    cmis_core.logs._configured = False
