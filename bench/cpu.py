"""Where the machine's CPU went during a run, from /proc (Linux): the server's processes,
PostgreSQL's, and everything else (wrk, the kernel's network work, other processes)."""

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds used so far)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the fields follow it.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (
            int(fields[1]),
            name,
            (int(fields[11]) + int(fields[12])) / _TICKS,
        )
    return found


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


@dataclass(frozen=True, slots=True)
class CpuSample:
    server: float
    postgres: float
    busy: float
    total: float


def _tree_seconds(processes: dict[int, tuple[int, str, float]], root_pid: int) -> float:
    tree = {root_pid}
    for pid, (parent, _, _) in sorted(processes.items()):
        if parent in tree:
            tree.add(pid)
    return sum(processes[pid][2] for pid in tree if pid in processes)


def _postgres_seconds(processes: dict[int, tuple[int, str, float]]) -> float:
    return sum(cpu for _, name, cpu in processes.values() if name.startswith("postgres"))


def sample(server_pid: int) -> CpuSample:
    processes = _processes()
    busy, total = _machine_busy_seconds()
    return CpuSample(
        server=_tree_seconds(processes, server_pid),
        postgres=_postgres_seconds(processes),
        busy=busy,
        total=total,
    )


def seconds_of(*root_pids: int) -> tuple[float, ...]:
    """CPU seconds used so far by each process and its children, then by PostgreSQL's."""
    processes = _processes()
    return (*(_tree_seconds(processes, pid) for pid in root_pids), _postgres_seconds(processes))


def usage(before: CpuSample, after: CpuSample, *, seconds: float) -> dict[str, float]:
    """Cores used on average over the run, by whom; `machine_busy` is a fraction of all cores."""
    server = (after.server - before.server) / seconds
    postgres = (after.postgres - before.postgres) / seconds
    busy = (after.busy - before.busy) / seconds
    cores = (after.total - before.total) / seconds
    return {
        "server_cores": round(server, 2),
        "postgres_cores": round(postgres, 2),
        "other_cores": round(max(busy - server - postgres, 0.0), 2),
        "machine_busy": round(busy / cores, 3) if cores else 0.0,
    }
