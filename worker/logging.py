"""Structured logging for the whole process, redacted by ``jobs.redaction``.

Every line the process writes goes to stderr through structlog's processors: our own structlog
loggers and the stdlib loggers of dramatiq and SQLAlchemy alike (bridged with
``structlog.stdlib.ProcessorFormatter``), so production logs are JSON from the first line to the last.

dramatiq logs the full repr of a failing message, envelope and body included, at ERROR: ``redact``
(the log processor) walks every event with the same policy as stored rejection payloads.
"""

from __future__ import annotations

import logging
import os
import select
import sys

import dramatiq
import structlog
from dramatiq.middleware import Middleware
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from jobs.redaction import walk
from worker.settings import Settings

STDERR_FD = 2


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: ``redact_payload`` over the whole event, the ``event`` text included.

    The ``exception`` entry is structlog's own traceback structure (its frames have a ``name``: the
    function), so only its text is scrubbed.
    """
    redacted: EventDict = walk({k: v for k, v in event_dict.items() if k != "exception"}, by_key=True)
    if "exception" in event_dict:
        redacted["exception"] = walk(event_dict["exception"], by_key=False)
    return redacted


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (redirections and test capture work).

    ``direct`` (dramatiq's worker processes) writes a line of up to ``PIPE_BUF`` bytes straight to
    the process' file descriptor 2, in one ``write``: dramatiq's CLI points ``sys.stderr`` at a
    pipe its main process reads and copies out again, a few hundred microseconds of CPU per line
    there. A write that small is never split or interleaved with another process' lines; a longer
    one (a traceback) still takes dramatiq's pipe, which keeps lines whole.
    """

    def __init__(self, *, direct: bool = False) -> None:
        super().__init__()
        self.direct = direct

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self.direct:
                data = line.encode("utf-8", "backslashreplace")
                if len(data) <= select.PIPE_BUF:
                    while data:
                        data = data[os.write(STDERR_FD, data):]
                    return
            stream = sys.stderr
            stream.write(line)
            stream.flush()
        except Exception:
            self.handleError(record)


def _level(name: str) -> int:
    try:
        return logging.getLevelNamesMapping()[name.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (BILLING_LOG_LEVEL)") from None


def _shared_processors(log_format: str) -> list[Processor]:
    """What both structlog's and the stdlib's records go through before redaction and rendering."""
    exceptions: Processor = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        if log_format == "json"
        else structlog.processors.format_exc_info  # a string, so it is scrubbed like the rest
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        exceptions,
    ]


def _install_handler(handler: logging.Handler, level: int) -> None:
    """Replace our earlier handler and plain console handlers (``basicConfig``'s); keep any other."""
    root = logging.getLogger()
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    for old in list(root.handlers):
        plain_console = type(old) is logging.StreamHandler and old.stream in consoles
        if isinstance(old, _StderrHandler) or plain_console:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def configure_logging(settings: Settings, *, direct_stderr: bool = False) -> None:
    """Route structlog and stdlib logging through one processor chain to stderr; idempotent.

    ``direct_stderr``: write short lines to file descriptor 2 itself (see ``_StderrHandler``).
    """
    level = _level(settings.log_level)
    shared = _shared_processors(settings.log_format)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        # The timestamp is the process' own: stamped after redaction, which would only scan its colons.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
    )
    handler = _StderrHandler(direct=direct_stderr)
    handler.setFormatter(formatter)
    _install_handler(handler, level)
    # Alembic announces its plugins at INFO on import: its progress is for its own command line.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class ProcessLogging(Middleware):
    """Worker processes log through the same redacting chain as every other process.

    dramatiq's CLI gives each worker process its own plain ``basicConfig`` handler, which would
    print a failing message's repr (names, signatures) unredacted; once the process has booted
    this replaces that handler with ours, which writes each short line to the process' stderr
    itself and a long one to the pipe the CLI collects.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(self.settings, direct_stderr=True)
