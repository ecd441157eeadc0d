"""Ports for the processes a test starts: outside the kernel's ephemeral range, and this
process's alone.

A port found free by binding port 0 lies in the range the kernel picks every outgoing socket's
source port from, so between the choice and the moment a component binds it (a gateway that
answers a later test, a phone's contact address, a service started again on its old port) any
client on the machine may take it, and the calls meant for the component silently go to that
socket instead. The kernel never picks a port outside that range by itself. Runs side by side
share the rest of the ports through lock files: each process leases whole blocks, held until it
exits (the kernel drops a dead process's locks), and hands out each port once.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import threading
from pathlib import Path

LOCALHOST = "127.0.0.1"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
BLOCK = 256
# Below this, the well-known and common fixed ports of services on a developer's machine.
_FLOOR = 10_000
LOCK_DIR = Path(tempfile.gettempdir()) / "antring-test-ports"


def ephemeral_range() -> range:
    """The ports the kernel gives sockets that do not choose one (Linux's setting; elsewhere
    the IANA range)."""
    try:
        low, high = (int(n) for n in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 49152, 65535
    return range(low, high + 1)


def _window() -> range:
    """The larger stretch of ports outside the ephemeral range, in whole blocks."""
    ephemeral = ephemeral_range()
    below = range(_FLOOR, max(_FLOOR, ephemeral.start))
    above = range(max(_FLOOR, ephemeral.stop), 65536)
    window = max(below, above, key=len)
    blocks = len(window) // BLOCK
    if blocks == 0:
        raise RuntimeError(
            f"the ephemeral port range {ephemeral.start}-{ephemeral.stop - 1} "
            f"({EPHEMERAL_RANGE_FILE}) leaves no {BLOCK} ports between {_FLOOR} and 65535 "
            "for the tests' components"
        )
    return range(window.start, window.start + blocks * BLOCK)


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOCALHOST, port))
            except OSError:
                return False
    return True


class _Leases:
    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Starts with no block (also in a forked child: its parent's are not its to use)."""
        self._mutex = threading.Lock()
        self._locks: list[int] = []  # open lock files: a block is leased while its file is
        self._next = 0
        self._end = 0  # the current block's end

    def reserve(self, span: int) -> int:
        if not 1 <= span <= BLOCK:
            raise ValueError(f"span must be 1 to {BLOCK}, not {span}")
        with self._mutex:
            while True:
                if self._next + span > self._end:
                    self._lease()
                first = self._next
                ports = range(first, first + span)
                busy = next((port for port in ports if not _bindable(port)), None)
                if busy is None:
                    self._next = first + span
                    return first
                # Something outside these tests listens there: step over it.
                self._next = busy + 1

    def _lease(self) -> None:
        window = _window()
        blocks = len(window) // BLOCK
        try:
            LOCK_DIR.mkdir()
            LOCK_DIR.chmod(0o1777)  # other users' runs lease their blocks here too
        except FileExistsError:
            pass
        # Start where the process id points, so that runs side by side seldom meet.
        start = (os.getpid() * 7919) % blocks
        for n in range(blocks):
            first = window.start + ((start + n) % blocks) * BLOCK
            fd = os.open(LOCK_DIR / f"{first}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
            try:
                # Locks belong to the open file, so a block this process holds is refused too.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks.append(fd)
            self._next, self._end = first, first + BLOCK
            return
        raise RuntimeError(
            f"every block of {BLOCK} test ports in {window.start}-{window.stop - 1} is taken "
            f"by other runs (locks in {LOCK_DIR})"
        )


_leases = _Leases()
os.register_at_fork(after_in_child=_leases.forget)


def reserve_port(span: int = 1) -> int:
    """A port (and the `span - 1` after it, for a component that binds a run of ports) that is
    free for UDP and TCP now and that nothing else running these tests is given; the kernel
    gives it no outgoing socket, so it stays free until the component binds it."""
    return _leases.reserve(span)
