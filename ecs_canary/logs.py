"""structlog set up once for every process: console on a terminal, JSON lines otherwise.

Temporal's and botocore's stdlib loggers go through the same processors, so a worker's output
is one stream of key/value events whatever wrote them, and every event has task definition
`environment` values masked (ecs_canary/masking.py) once its traceback is text.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
import temporalio.activity
import temporalio.workflow

from ecs_canary.masking import mask_event

_SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _use_json(stream: TextIO) -> bool:
    wanted = os.environ.get("LOG_FORMAT", "").lower()
    if wanted in ("json", "console"):
        return wanted == "json"
    return not stream.isatty()


def configure_logging(stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one renderer on `stream` (stderr default)."""
    stream = stream or sys.stderr
    level = logging.getLevelNamesMapping().get(os.environ.get("LOG_LEVEL", "INFO").upper())
    if level is None:
        raise SystemExit(f"LOG_LEVEL must be a logging level name, got {os.environ['LOG_LEVEL']!r}")
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if _use_json(stream)
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_event,  # last before rendering: it must see the traceback's text too
                renderer,
            ],
        )
    )
    # Temporal's context travels as structured keys (`temporal_workflow`), not in the text.
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore and httpx (the http steps) narrate every request at DEBUG/INFO; keep their
    # warnings only.
    for chatty in ("botocore", "urllib3", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
