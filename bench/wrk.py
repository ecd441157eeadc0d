"""Runs wrk with one of the Lua scripts in bench/lua/ and reads the JSON line its done() prints."""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
INSTALL_HINT = "install it with: sudo apt-get install -y --no-install-recommends wrk"
_MARKER = "BENCH_JSON "


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(f"wrk is not installed; {INSTALL_HINT}")
    return path


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


@dataclass(frozen=True, slots=True)
class WrkResult:
    script: str
    connections: int
    seconds: float
    requests: int
    # Connect, read, write and timeout errors; `non_2xx` counts answers with status >= 400.
    socket_errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    threads: list[dict[str, Any]]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx

    def summary(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "socket_errors": self.socket_errors,
            "non_2xx": self.non_2xx,
        }


def run_wrk(
    wrk: str,
    script: str,
    *,
    base_url: str,
    connections: int,
    seconds: int,
    env: dict[str, str],
    threads: int = 1,
) -> WrkResult:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        # Past --timeout wrk leaves a request out of the latency histogram: keep them all in.
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(LUA_DIR / f"{script}.lua"),
        base_url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk {script} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    data = json.loads(lines[-1].removeprefix(_MARKER))
    latency, errors = data["latency_us"], data["errors"]
    return WrkResult(
        script=script,
        connections=connections,
        seconds=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        socket_errors=sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        non_2xx=int(errors["status"]),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        threads=data["threads"],
    )
