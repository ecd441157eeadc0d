"""The ports the SIP tests give their components stay theirs until the components bind them."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.helpers.ports import ephemeral_range, reserve_port

from .harness import ROOT, Sipp

pytestmark = pytest.mark.sip


def _free_for_udp_and_tcp(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def test_no_outgoing_socket_can_take_a_reserved_port() -> None:
    """The kernel picks an outgoing socket's port from its ephemeral range only: a port
    outside it waits for its component however many clients connect meanwhile."""
    ephemeral = ephemeral_range()
    firsts = [reserve_port() for _ in range(20)] + [reserve_port(span=4) for _ in range(5)]
    firsts.append(reserve_port(span=100))
    spans = [1] * 20 + [4] * 5 + [100]
    ports = [port for first, span in zip(firsts, spans, strict=True)
             for port in range(first, first + span)]  # fmt: skip

    assert len(set(ports)) == len(ports)
    assert [port for port in ports if port in ephemeral] == []
    assert all(_free_for_udp_and_tcp(port) for port in ports)


def test_runs_side_by_side_never_get_the_same_port() -> None:
    """Two other test processes reserve ports while this one does: no port is given twice."""
    script = (
        "import sys\n"
        "from tests.helpers.ports import reserve_port\n"
        "print(*(reserve_port() for _ in range(300)), flush=True)\n"
        "sys.stdin.read()\n"  # holds its ports until told to end
    )
    others = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        mine = [reserve_port() for _ in range(300)]
        theirs = []
        for other in others:
            assert other.stdout is not None
            theirs.append([int(port) for port in other.stdout.readline().split()])
    finally:
        for other in others:
            other.communicate(timeout=10)

    every = [*mine, *theirs[0], *theirs[1]]
    assert len(every) == 900
    assert len(set(every)) == 900


def test_an_answering_sipp_refuses_a_port_it_cannot_have(sipp: Sipp) -> None:
    """A gateway whose port something else holds would never answer (the edge's calls end in
    408 Request Timeout): the test that starts it fails there, naming the port."""
    port = reserve_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", port))
        with pytest.raises(RuntimeError, match=f"cannot answer on {port}: the port is taken"):
            sipp.uas("uas_answer.xml", port)
