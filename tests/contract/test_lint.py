"""The OpenAPI document, with API keys only and as served with an identity provider's sign-in,
passes both linters with no error: Redocly's recommended rules
(redocly.yaml) and Spectral's spectral:oas (.spectral.yaml). Warnings are shown, not failed."""

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from .tools import ROOT, run_tool

pytestmark = pytest.mark.contract

SPECTRAL_SEVERITIES = {0: "error", 1: "warning", 2: "info", 3: "hint"}


class Finding(NamedTuple):
    severity: str
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity} {self.rule} at {self.where}: {self.message}"


def check(linter: str, findings: list[Finding]) -> None:
    errors = [finding for finding in findings if finding.severity == "error"]
    for finding in findings:
        print(f"{linter}: {finding}")
    if errors:
        listed = "\n".join(f"  {error}" for error in errors)
        pytest.fail(f"{linter} found {len(errors)} errors:\n{listed}", pytrace=False)


def parse(linter: str, output: str) -> object:
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        pytest.fail(f"{linter} did not report in JSON:\n{output}", pytrace=False)


@pytest.fixture(params=["keys", "sign-in"])
def document(request: pytest.FixtureRequest) -> Path:
    """The document with API keys only, and as served with an identity provider's sign-in."""
    name = "openapi_path" if request.param == "keys" else "signed_in_openapi_path"
    path: Path = request.getfixturevalue(name)
    return path


def test_redocly_finds_no_error(node_bin: Path, document: Path) -> None:
    command = [node_bin / "redocly", "lint", "--config", ROOT / "redocly.yaml"]
    report = parse("redocly", run_tool([*command, "--format", "json", document], check=False))
    assert isinstance(report, dict)
    findings = [
        Finding(
            problem["severity"],
            problem["ruleId"],
            problem["location"][0]["pointer"] if problem["location"] else "#",
            problem["message"],
        )
        for problem in report["problems"]
    ]
    check("redocly", findings)


def test_spectral_finds_no_error(node_bin: Path, document: Path, tmp_path: Path) -> None:
    # Spectral writes its JSON to a file: on stdout it adds a sentence when nothing is found.
    report_path = tmp_path / "spectral.json"
    command = [node_bin / "spectral", "lint", "--ruleset", ROOT / ".spectral.yaml"]
    run_tool([*command, "--format", "json", "--output", report_path, document], check=False)
    report = parse("spectral", report_path.read_text())
    assert isinstance(report, list)
    findings = [
        Finding(
            SPECTRAL_SEVERITIES[result["severity"]],
            result["code"],
            "#/"
            + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in result["path"]),
            result["message"],
        )
        for result in report
    ]
    check("spectral", findings)
