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
    # The service writes its own access line (app.observability.access), gathered here.
    global _access_lines
    _access_lines = AccessLines(sys.stderr, json_lines=json_lines)
    logging.getLogger("uvicorn.access").disabled = True
    _start_flushing()


ACCESS_LOGGER = "antring.access"
# Often enough that formatting what gathered holds up no request for long.
ACCESS_FLUSH_SECONDS = 0.1
_flushing = threading.Event()
_access_lines: "AccessLines | None" = None


def access_lines() -> "AccessLines | None":
    """Where this process's access lines go once logging is configured (`antring serve`);
    None before, when each one is a record of the `antring.access` logger instead."""
    return _access_lines


def _start_flushing() -> None:
    """One thread a process, however often logging is configured: it writes the access lines
    gathered since the last time."""
    if _flushing.is_set():
        return
    _flushing.set()

    def flush() -> None:
        while True:
            time.sleep(ACCESS_FLUSH_SECONDS)
            lines = _access_lines
            if lines is not None:
                lines.flush()

    threading.Thread(target=flush, name="access-log-flush", daemon=True).start()


# One access line's fields, as the request left them: (Unix time, request id, method, route
# template, status, duration in seconds, tenant id, key id).
AccessLine = tuple[float, str, str, str, int, float, str | None, str | None]


class AccessLines:
    """Access lines gathered as requests end (a tuple appended: no record, no lock, no write)
    and formatted and written together, in one write, by the flushing thread. The lines look
    like the other log lines: the same JSON keys, or the same text."""

    def __init__(self, stream: TextIO, *, json_lines: bool) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self._pending: collections.deque[AccessLine] = collections.deque()
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._second = -1
        self._second_text = ""
        self._templates: dict[tuple[str, str, int], str] = {}
        self._ids: dict[str | None, str] = {None: "null"}

    def add(self, line: AccessLine) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._pending.append(line)

    def flush(self) -> None:
        pending = self._pending
        lines = []
        while pending:
            lines.append(self._format(pending.popleft()))
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _format(self, line: AccessLine) -> str:
        at, request_id, method, route, status, seconds, tenant_id, key_id = line
        milliseconds = "%.2f" % (seconds * 1000)
        if not self.json_lines:
            return (
                f"INFO {ACCESS_LOGGER} [{request_id}]: {method} {route} {status} {milliseconds} ms"
            )
        template = self._templates.get((method, route, status))
        if template is None:
            template = self._templates[method, route, status] = _json_template(
                method, route, status
            )
        return template % (
            self._time(at),
            milliseconds,
            _json_text(request_id),
            milliseconds,
            self._id(tenant_id),
            self._id(key_id),
        )

    def _id(self, value: str | None) -> str:
        """A tenant's or key's id as JSON: the same few again and again, so each is kept."""
        text = self._ids.get(value)
        if text is None:
            if len(self._ids) >= 10_000:
                self._ids.clear()
            text = self._ids[value] = _json_text(value)
        return text

    def _time(self, at: float) -> str:
        """As logging.Formatter writes it: local time, with milliseconds."""
        second = int(at)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._second_text},{int((at - second) * 1000):03d}"


def _json_template(method: str, route: str, status: int) -> str:
    """The JSON access line of one method, route template and status, for `%` to fill in:
    time, duration in ms (in the message, then as a number), request id, tenant id, key id.
    Methods, routes and statuses are few (the HTTP parser knows the methods): each is built
    once."""
    message = json.dumps(f"{method} {route} {status} ")[:-1].replace("%", "%%")
    method, route = (json.dumps(value).replace("%", "%%") for value in (method, route))
    return (
        f'{{"time":"%s","level":"INFO","logger":"{ACCESS_LOGGER}",'
        f'"message":{message}%s ms","request_id":%s,"method":{method},"route":{route},'
        f'"status":{status},"duration_ms":%s,"tenant_id":%s,"key_id":%s}}'
    )


def _json_text(value: str | None) -> str:
    """A JSON string (or null): quoted as it is when nothing in it needs escaping, which is
    every id the service makes and nearly every one a client sends (request ids are printable
    ASCII: `valid_request_id`)."""
    if value is None:
        return "null"
    if '"' not in value and "\\" not in value and value.isascii() and value.isprintable():
        return f'"{value}"'
    return json.dumps(value)
