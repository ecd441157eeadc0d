"""The service as a browser meets it: `antring serve` in a process of its own on a reserved port
of 127.0.0.1, on the tests' database (SQLite or PostgreSQL), with the settings a test gives.

    with serve(tmp_path, migrated_url, oidc_issuer=idp.issuer) as url:
        httpx.get(f"{url}/health/ready")

No bootstrap, no scheduler, no webhook deliveries: the test makes what it needs. Its output
goes to `workdir/service.log`, shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.helpers.ports import LOCALHOST, reserve_port
from tests.helpers.settings import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def serve(workdir: Path, database_url: str, **settings: str) -> Iterator[str]:
    """Yields the service's base URL once it is ready; `settings` are ANTRING_* values by
    their lower-case names (`oidc_issuer="http://..."`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = reserve_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANTRING_SECRET_KEY": TEST_SECRET_KEY,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        "ANTRING_WEBHOOKS_ENABLED": "false",
        **{f"ANTRING_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = workdir / "service.log"
    with log_path.open("ab") as log:
        # This checkout's code (python -m from its root), whatever the venv was installed from.
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", LOCALHOST, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{LOCALHOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited at start:\n{_tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer within 30s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
