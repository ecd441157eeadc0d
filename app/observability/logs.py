"""The service's log lines: text or one JSON object per line (`ANTRING_LOG_FORMAT`), each with
the id of the request it belongs to. Statements' values never reach them (engines hide them)."""

import collections
import json
import logging
import re
import sys
import threading
import time
from typing import TextIO

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

# A request id as clients and the SIP edge send it (the SIP Call-ID is a good one): printable
# ASCII without spaces, bounded.
_REQUEST_ID = re.compile(r"[!-~]{1,128}")


def valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def quiet_noisy_loggers() -> None:
    """Loggers that must stay above DEBUG whatever the level: aiosqlite logs each statement
    with its values (an HA1, an encrypted password); the scheduler logs each run of each job
    at INFO, once a minute, forever."""
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def configure_logging(*, level: str, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    # It sets `correlation_id` on every record: the request's id, "-" outside a request.
    handler.addFilter(CorrelationIdFilter(uuid_length=None, default_value="-"))
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
                rename_fields={
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                    "correlation_id": "request_id",
                },
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(levelname)s %(name)s [%(correlation_id)s]: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_noisy_loggers()
    # Access lines are written on every request: a lean formatter, and gathered in memory and
    # written together every ACCESS_FLUSH_SECONDS, in one write, by the flushing thread (never
    # by a request). A process that dies loses at most that much of them.
    gathered = GatheredLines(sys.stderr)
    gathered.setFormatter(AccessLineFormatter() if json_lines else handler.formatter)
    gathered.addFilter(CorrelationIdFilter(uuid_length=None, default_value="-"))
    access_logger = logging.getLogger(ACCESS_LOGGER)
    access_logger.handlers[:] = [gathered]
    access_logger.propagate = False
    # The service writes its own access line (app.observability.access).
    logging.getLogger("uvicorn.access").disabled = True
    _start_flushing()


ACCESS_LOGGER = "antring.access"
# Often enough that formatting what gathered holds up no request for long.
ACCESS_FLUSH_SECONDS = 0.1
_flushing = threading.Event()


def _start_flushing() -> None:
    """One thread a process, however often logging is configured: it flushes the access
    logger's handlers of the moment."""
    if _flushing.is_set():
        return
    _flushing.set()

    def flush() -> None:
        while True:
            time.sleep(ACCESS_FLUSH_SECONDS)
            for handler in logging.getLogger(ACCESS_LOGGER).handlers:
                handler.flush()

    threading.Thread(target=flush, name="access-log-flush", daemon=True).start()


class GatheredLines(logging.Handler):
    """Keeps each record as it comes (an append, no lock, no write) and writes those gathered,
    formatted, in one write when flushed."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._records: collections.deque[logging.LogRecord] = collections.deque()

    def handle(self, record: logging.LogRecord) -> bool:
        # The filters (the request id) run now, in the request's context; nothing else does.
        if not self.filter(record):
            return False
        self._records.append(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)

    def flush(self) -> None:
        lines = []
        while self._records:
            record = self._records.popleft()
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        if lines:
            with self.lock:  # type: ignore[union-attr]
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()


class AccessLineFormatter(logging.Formatter):
    """An access line as one JSON object, from the fields app.observability.access gives it:
    the same keys as the other JSON lines, built in one json.dumps (python-json-logger walks
    every attribute of every record, a cost on each request)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                "request_id": fields.get("correlation_id", "-"),
                "method": fields.get("method"),
                "route": fields.get("route"),
                "status": fields.get("status"),
                "duration_ms": fields.get("duration_ms"),
                "tenant_id": fields.get("tenant_id"),
                "key_id": fields.get("key_id"),
            },
            separators=(",", ":"),
        )
