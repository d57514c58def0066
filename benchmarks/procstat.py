"""CPU time and memory of processes, read from /proc (Linux): the gateway's own CPU time is the
honest cost of a request, wall time is not. A process's figures include its live descendants
(worker processes), found through /proc/PID/task/*/children."""
from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK")  # utime/stime unit (usually 100 Hz: 10 ms resolution)


def descendants(pid: int, limit: int = 256) -> list[int]:
    """pid and its live descendants, breadth first, at most `limit` processes."""
    out, queue = [], [pid]
    while queue and len(out) < limit:
        p = queue.pop(0)
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    queue.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of proc(5)


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of pid and its live descendants."""
    total, seen = 0.0, False
    for p in descendants(pid):
        cpu = cpu_seconds(p)
        if cpu is not None:
            total, seen = total + cpu, True
    return total if seen else None


def rss_bytes(pid: int) -> int | None:
    """Resident set size of one process, from /proc/PID/statm."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def tree_rss_bytes(pid: int) -> int | None:
    sizes = [s for s in map(rss_bytes, descendants(pid)) if s is not None]
    return sum(sizes) if sizes else None


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}/stat")
