"""The service under test as its own process (`antring serve`), and a small HTTP client for the
few requests the benchmark makes itself."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ANTRING = Path(sys.executable).with_name("antring")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request_json(
    method: str, url: str, *, token: str | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (None if there is none)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def service_env(database_url: str) -> dict[str, str]:
    """The environment `antring` runs with in the benchmarks: as in production, JSON log lines,
    an access line per request, metrics and request ids; no bootstrap, no scheduler."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        "ANTRING_LOG_LEVEL": "INFO",
        "ANTRING_LOG_FORMAT": "json",
    }


def run_cli(env: dict[str, str], *args: str) -> str:
    """Runs an `antring` command; returns the last line it printed."""
    done = subprocess.run(
        [str(ANTRING), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"antring {' '.join(args)} failed:\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


class Server:
    """`antring serve` on a free port; its output goes to `log_path`."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        workers: int,
        log_path: Path,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        self.env = env
        self.workers = workers
        self.log_path = log_path
        # A command the server runs under (valgrind, say).
        self.wrapper = wrapper
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def start(self, ready_timeout: float = 60.0) -> None:
        command = [
            *self.wrapper,
            str(ANTRING),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with self.log_path.open("ab") as log:
            # Its own session, so that stopping it reaches the workers uvicorn forks.
            self._process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited at start-up; see {self.log_path}")
            try:
                status, _ = request_json("GET", f"{self.base_url}/health/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the server was not ready in {ready_timeout:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # uvicorn finishes the requests in flight on SIGTERM.
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
