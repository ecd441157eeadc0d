"""What the contract tests share: where the npm tools are, and running one."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
# No tool may phone home or look for updates: CI reaches only the package registries.
NODE_ENV = {
    **os.environ,
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "NO_COLOR": "1",
}


def missing_tool(message: str) -> None:
    # In CI a missing tool is a broken setup, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def run_tool(command: list[str | Path], cwd: Path = ROOT, *, check: bool = True) -> str:
    """Runs a tool and returns what it wrote to stdout; with `check`, fails the test with its
    output unless it exits 0."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=NODE_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{Path(command[0]).name} exited {done.returncode}:\n{done.stdout}{done.stderr}",
            pytrace=False,
        )
    return done.stdout
