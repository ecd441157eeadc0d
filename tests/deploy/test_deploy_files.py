"""The deploy files, checked where no Docker engine runs: hadolint finds nothing in any
image (the console's too), and the compose stack starts PostgreSQL, then the migrations, then
the service, then the edge."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).with_name("hadolint")


@pytest.mark.parametrize(
    "dockerfile",
    [
        "Dockerfile",
        "deploy/kamailio/Dockerfile",
        "deploy/rtpengine/Dockerfile",
        "console/Dockerfile",
    ],
)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    done = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", "--no-color", str(ROOT / dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^USER [0-9]+$", text, re.MULTILINE), "USER by number"


def test_the_compose_stack_starts_in_order() -> None:
    stack = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    services = stack["services"]

    postgres = services["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert services["migrate"]["command"] == ["antring", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    accounts = services["accounts"]
    assert accounts["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert accounts["command"][:2] == ["antring", "serve"]
    assert services["kamailio"]["depends_on"]["accounts"]["condition"] == "service_healthy"
    # The edge bridges media through the stack's rtpengine.
    assert "rtpengine" in services["kamailio"]["depends_on"]
    assert 'RTPENGINE_SOCK="udp:rtpengine:2223"' in services["kamailio"]["command"]
    for service in services.values():
        if "build" in service:
            context = ROOT / "deploy" / service["build"]["context"]
            assert (context / "Dockerfile").exists(), context
    # Every variable the stack reads is in the example environment file.
    used = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "deploy/compose.yaml").read_text()))
    example = (ROOT / "deploy/compose.env.example").read_text()
    assert used <= set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE)), used


def test_the_compose_stack_runs_two_edges_as_one_registrar_over_two_replicas() -> None:
    services = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())["services"]
    replicas = [name for name in services if name.startswith("accounts")]
    edges = [name for name in services if name.startswith("kamailio")]
    assert len(replicas) == 2 and len(edges) == 2
    for name in replicas:
        pushes_to = services[name]["environment"]["ANTRING_EDGE_RPC_URLS"]
        assert all(f"http://{edge}:5062/RPC" in pushes_to for edge in edges)
    addresses = []
    for name in edges:
        edge = services[name]
        assert edge["environment"]["ANTRING_URL"].split() == [
            f"http://{replica}:8000" for replica in replicas
        ]
        assert "WITH_CLUSTER" in edge["command"]
        address = edge["networks"]["sip"]["ipv4_address"]
        assert f'CLUSTER_URI="sip:{address}:5090"' in edge["command"]
        addresses.append(address)
    # Each asks the other when it starts.
    for name, other in zip(edges, reversed(addresses), strict=True):
        assert f'CLUSTER_NOTIFY="sip:{other}:5090"' in services[name]["command"]


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "node_modules", ".git", "tests", "antring.db*"):
        assert entry in ignored
