"""The service's log lines: text or one JSON object per line (`ANTRING_LOG_FORMAT`), each with
the id of the request it belongs to. Statements' values never reach them (engines hide them)."""

import logging
import re
import sys
import uuid

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

# A request id as clients and the SIP edge send it (the SIP Call-ID is a good one): printable
# ASCII without spaces, bounded.
_REQUEST_ID = re.compile(r"[!-~]{1,128}")


def valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


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
    # The service writes its own access line (app.observability.access).
    logging.getLogger("uvicorn.access").disabled = True
