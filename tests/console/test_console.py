"""The operations console (console/) in Debian's Chromium, driven by Playwright
(console/tests/guide.spec.ts), against a real `antring serve` (on PostgreSQL when
TEST_DATABASE_URL names a server, else SQLite) and the real OpenID Connect provider
(tests/idp): one Playwright test per step of the operators' guide, in its order and words.

This module lints and builds the console (`npm run lint`, `npm run build`), checks its
JavaScript budget and that its generated client matches the service's document, seeds a tenant
of 60 agents with Vietnamese names, serves the build as a static site (with its config.json
naming the service and the provider) and runs the suite. Without node, the console's
packages, the provider's packages or Chromium the test skips, and fails in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.helpers.idp import IdentityProvider
from tests.helpers.idp import missing as idp_missing
from tests.helpers.ports import LOCALHOST, reserve_port

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SECRET_KEY = "console-tests-secret-key-0123456789-abcdef"
CONSOLE_TOKEN_SECONDS = 70
OPERATOR = ("lan.tran", "Trần Thị Lan")
VIEWER = ("minh.le", "Lê Minh")

# The agents: "Nguyễn Văn An" and "Nguyễn Văn Anh" are what "nguyen van an" finds; the given
# names put Dũng before Đức in Vietnamese order; 60 in all, so the table has two pages, and the
# fifty Yến come last by given name.
AGENTS = [
    "Nguyễn Văn An",
    "Nguyễn Văn Anh",
    "Lê Thị Hoa",
    "Trần Văn Dũng",
    "Phạm Minh Đức",
    "Ngô Thị Bình",
    "Đặng Quốc Bảo",
    "Dương Thị Cúc",
    "Hoàng Văn Em",
    "Vũ Thị Giang",
] + [
    f"{surname} {middle} Yến"
    for surname in ("Bùi", "Cao", "Đỗ", "Hồ", "Lâm", "Lý", "Mai", "Tạ", "Tô", "Võ")
    for middle in ("Thị", "Ngọc", "Hải", "Kim", "Bảo")
]


def _missing() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed; the console tests need Node.js 20.19+"
    if not (CONSOLE / "node_modules" / "@playwright" / "test").is_dir():
        return (
            "the console's packages are not installed; run "
            "`npm ci --ignore-scripts --no-audit --no-fund --prefix console`"
        )
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return idp_missing()


def _run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        command,
        cwd=CONSOLE,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {done.returncode}:\n"
            f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}",
            pytrace=False,
        )
    return done.stdout


class Process:
    """A child process whose output goes to a file, stopped with its process group."""

    def __init__(self, command: list[str], log: Path, *, env: dict[str, str], cwd: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self._out.close()


def _wait_for(url: str, proc: Process, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{what} exited at start:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer at {url} within {timeout}s:\n{proc.tail()}")
        time.sleep(0.2)


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database: on TEST_DATABASE_URL's PostgreSQL server when set, else SQLite."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('console-db') / 'antring.db'}"
        return
    name = f"antring_console_{uuid.uuid4().hex[:12]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _serve_console(port: int, config: bytes) -> ThreadingHTTPServer:
    """The built console as a web server serves it: its files, config.json, and index.html for
    every other path (the app's own routes)."""
    dist = CONSOLE / "dist"

    class Site(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(dist), **kwargs)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/config.json":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(config)))
                self.end_headers()
                self.wfile.write(config)
                return
            if not (dist / path.lstrip("/")).is_file():
                self.path = "/index.html"
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOCALHOST, port), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Stack:
    console_url: str
    dev_console_url: str
    api_url: str
    admin_key: str
    platform_key: str
    tenant_id: str
    artifacts: Path


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"antring {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def _seed(api_url: str, platform_key: str) -> tuple[str, str]:
    """A tenant with AGENTS; answers its id and an admin key."""
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        platform = {"Authorization": f"Bearer {platform_key}"}
        resp = client.post(
            "/v1/tenants",
            json={"name": "Tổng đài Hà Nội", "sip_domain": "hanoi.sip.test",
                  "timezone": "Asia/Ho_Chi_Minh"},
            headers=platform,
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        tenant_id = resp.json()["id"]
        resp = client.post(
            f"/v1/tenants/{tenant_id}/api-keys",
            json={"name": "console tests", "role": "admin"},
            headers=platform,
        )
        assert resp.status_code == 201, resp.text
        admin_key = resp.json()["key"]
        admin = {"Authorization": f"Bearer {admin_key}"}
        for n, name in enumerate(AGENTS):
            resp = client.post(
                "/v1/users", json={"display_name": name, "email": f"agent{n}@hanoi.test"},
                headers=admin,
            )  # fmt: skip
            assert resp.status_code == 201, resp.text
    return tenant_id, admin_key


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _missing()
    if reason is not None:
        # In CI a missing tool is a broken setup, not a reason to skip.
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("console")

    # The lint, the build (type-checked), its budget, and its client against the document as
    # the service makes it now.
    _run(["npm", "run", "--silent", "lint"])
    _run(["npm", "run", "--silent", "build"])
    print("\n" + _run(["node", "scripts/budget.mjs"]))
    generated = work / "schema.d.ts"
    _run(["sh", "scripts/generate.sh", str(generated)], env={"PYTHON": sys.executable})
    committed = CONSOLE / "src" / "client" / "schema.d.ts"
    assert generated.read_text() == committed.read_text(), (
        "console/src/client/schema.d.ts is not the service's document: run `npm run generate` "
        "in console/"
    )

    console_port, dev_port, api_port = reserve_port(), reserve_port(), reserve_port()
    console_url = f"http://{LOCALHOST}:{console_port}"
    # The same build with no identity provider, as `make console` beside `make run` has it.
    dev_console_url = f"http://{LOCALHOST}:{dev_port}"
    api_url = f"http://{LOCALHOST}:{api_port}"
    started: list[Process] = []
    sites: list[ThreadingHTTPServer] = []
    idp = IdentityProvider(work / "idp")
    # The console's tokens live 70 s: it renews them silently a minute before they expire, so
    # every 10 s or so while the suite runs.
    idp.add_public_client(
        "console",
        [f"{console_url}/signed-in", f"{console_url}/silent-renew.html"],
        access_token_ttl=CONSOLE_TOKEN_SECONDS,
    )
    idp.start()
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ANTRING_")},
            "DATABASE_URL": database_url,
            "ANTRING_SECRET_KEY": SECRET_KEY,
            "ANTRING_BOOTSTRAP": "false",
            "ANTRING_SCHEDULER_ENABLED": "false",
            "ANTRING_OIDC_ISSUER": idp.issuer,
            "ANTRING_OIDC_AUDIENCE": idp.audience,
            "ANTRING_CORS_ORIGINS": json.dumps([console_url, dev_console_url]),
            "PYTHONPATH": str(ROOT),
        }
        _cli(env, "migrate")
        platform_key = _cli(
            env, "api-key", "create", "--platform", "--role", "admin", "--name", "console"
        ).splitlines()[-1]
        service = Process(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                LOCALHOST,
                "--port",
                str(api_port),
            ],
            work / "service.log",
            env=env,
            cwd=ROOT,
        )
        started.append(service)
        _wait_for(f"{api_url}/health/ready", service, "the service")
        tenant_id, admin_key = _seed(api_url, platform_key)
        idp.add_account(
            OPERATOR[0], tenant_id=tenant_id, roles=["operator"], name=OPERATOR[1],
            email="lan@hanoi.test",
        )  # fmt: skip
        idp.add_account(VIEWER[0], tenant_id=tenant_id, roles=["viewer"], name=VIEWER[1])

        config = {"apiUrl": api_url, "oidc": {"authority": idp.issuer, "clientId": "console"}}
        sites.append(_serve_console(console_port, json.dumps(config).encode()))
        dev_config = {"apiUrl": api_url, "oidc": None}
        sites.append(_serve_console(dev_port, json.dumps(dev_config).encode()))
        artifacts = Path(os.environ.get("CONSOLE_ARTIFACTS", work / "artifacts"))
        yield Stack(
            console_url, dev_console_url, api_url, admin_key, platform_key, tenant_id, artifacts
        )
    finally:
        for site in sites:
            site.shutdown()
        for proc in reversed(started):
            proc.stop()
        idp.stop()


def test_the_operators_guide_step_by_step_in_chromium(stack: Stack) -> None:
    """Each step of the guide is one Playwright test (console/tests/guide.spec.ts)."""
    done = subprocess.run(
        [str(CONSOLE / "node_modules" / ".bin" / "playwright"), "test"],
        cwd=CONSOLE,
        env={
            **os.environ,
            "FORCE_COLOR": "0",
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
            "CHROMIUM_PATH": CHROMIUM,
            "CONSOLE_URL": stack.console_url,
            "DEV_CONSOLE_URL": stack.dev_console_url,
            "API_URL": stack.api_url,
            "ADMIN_KEY": stack.admin_key,
            "OPERATOR_ACCOUNT": OPERATOR[0],
            "OPERATOR_NAME": OPERATOR[1],
            "VIEWER_ACCOUNT": VIEWER[0],
            "CONSOLE_ARTIFACTS": str(stack.artifacts),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(done.stdout[-8000:])
    assert done.returncode == 0, f"{done.stdout[-12000:]}\n{done.stderr[-4000:]}"


# The agent whose phone registers in the live test; the guide's steps leave her devices alone.
LIVE_AGENT = "Hoàng Văn Em"


def test_a_phone_the_edge_registers_turns_its_dot_green_without_a_reload(
    stack: Stack, tmp_path: Path
) -> None:
    """The console signed in as the operator, and the reference edge (Kamailio) reporting to the
    same service: a sipp phone registering turns the agent's dot green in the open table, and
    unregistering turns it grey, with no reload; a call's usage reported by the edge's key moves
    the minutes column the same way."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.helpers.browser import chromium
    from tests.sip.harness import Sipp, start_kamailio

    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    with httpx.Client(base_url=stack.api_url, timeout=30.0) as api:
        key = api.post(
            f"/v1/tenants/{stack.tenant_id}/api-keys",
            json={"name": "edge", "role": "call_control"},
            headers={"Authorization": f"Bearer {stack.platform_key}"},
        )
        assert key.status_code == 201, key.text
        found = api.get("/v1/users", params={"q": LIVE_AGENT}, headers=admin).json()["items"]
        [agent] = [u for u in found if u["display_name"] == LIVE_AGENT]
        [device] = agent["devices"]
        config = api.get(
            f"/v1/devices/{device['id']}/config", params={"reveal": "password"}, headers=admin
        ).json()["ip_phone"]
    edge_key = key.json()["key"]
    kamailio = start_kamailio(tmp_path / "kamailio", stack.api_url, edge_key)
    sipp = Sipp(kamailio, tmp_path)
    try:
        # The operators' browser speaks Vietnamese, as the guide's console does.
        with chromium(tmp_path, ["--lang=vi-VN", "--accept-lang=vi-VN,vi"]) as browser:
            browser.get(f"{stack.console_url}/config/antring/users")
            wait = WebDriverWait(browser, 30, poll_frequency=0.1)
            wait.until(lambda b: b.find_elements(By.XPATH, "//button[.='Đăng nhập']"))[0].click()
            account = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[name=login]"))
            account[0].send_keys(OPERATOR[0])
            browser.find_element(By.XPATH, "//button[.='Sign in']").click()
            allow = wait.until(
                lambda b: (
                    b.find_elements(By.XPATH, "//button[.='Allow']")
                    or b.find_elements(By.XPATH, "//button[.='Đăng xuất']")
                )
            )
            if allow[0].text == "Allow":
                allow[0].click()
            search = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[type=search]"))
            search[0].send_keys("hoang van em")
            dot = f"[data-device='{device['name']}'] [data-registered]"
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, dot))

            # Read in the page in one step: React redraws the row as events arrive, and an
            # element found first and read afterwards may be gone by then.
            def registered() -> str | None:
                found: str | None = browser.execute_script(
                    "return document.querySelector(arguments[0])?.dataset.registered ?? null", dot
                )
                return found

            def minutes() -> str:
                return str(
                    browser.execute_script(
                        "return document.querySelector('[data-testid=minutes]')?.innerText ?? ''"
                    )
                )

            assert registered() == "false"
            assert minutes() == "0/Không giới hạn"
            # The table follows the stream (polling, its fallback, would take 30 s).
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-live=live]"))

            port = reserve_port()
            phone = sipp.register(
                config["username"], config["password"], config["domain"], contact_port=port
            )
            assert phone.final is not None and phone.final[0] == 200, phone.log
            # From the edge's report to the open table through the event stream: no reload.
            live = WebDriverWait(browser, 5, poll_frequency=0.05)
            live.until(lambda _: registered() == "true")

            with httpx.Client(base_url=stack.api_url, timeout=30.0) as edge:
                used = edge.post(
                    "/v1/call-control/usage",
                    json={
                        "domain": config["domain"],
                        "username": config["username"],
                        "call_id": "live-console-call",
                        "destination": "0901234567",
                        "started_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
                        "duration_seconds": 150,
                    },
                    headers={"Authorization": f"Bearer {edge_key}"},
                )
            assert used.status_code in (200, 201, 202), used.text
            live.until(lambda _: minutes() == "3/Không giới hạn")

            gone = sipp.register(
                config["username"],
                config["password"],
                config["domain"],
                contact_port=port,
                expires=0,
            )
            assert gone.final is not None and gone.final[0] == 200, gone.log
            live.until(lambda _: registered() == "false")
            shots = stack.artifacts / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(shots / "12-live-dot.png"))
    finally:
        sipp.stop_all()
        kamailio.stop()
