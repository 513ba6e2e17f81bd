"""CPU time and memory of a running process tree, read from /proc.

A server under test may fork (functions-framework serves through a gunicorn arbiter
and its worker), so every figure covers the process and all its descendants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class TreeSample:
    """One reading of a process tree."""

    cpu_seconds: float
    """utime + stime of every process in the tree."""
    rss_bytes: int
    """VmRSS summed over the tree."""
    peak_rss_bytes: int
    """VmHWM (high-water mark of RSS) summed over the tree."""
    pids: tuple[int, ...]


def _parent_and_cpu(pid: int) -> tuple[int, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    parent, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return parent, (utime + stime) / _CLOCK_TICKS


def _memory_kib(pid: int) -> tuple[int, int]:
    rss = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except OSError:
        pass
    return rss, peak


def peak_rss_bytes(pid: int) -> int:
    """VmHWM of one process (0 once it has exited)."""
    return _memory_kib(pid)[1] * 1024


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _parent_and_cpu(int(entry.name))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def sample_tree(root: int) -> TreeSample:
    """CPU seconds and memory of ``root`` and its descendants, now."""
    cpu = 0.0
    rss = peak = 0
    pids = descendants(root)
    for pid in pids:
        info = _parent_and_cpu(pid)
        if info is None:
            continue
        cpu += info[1]
        pid_rss, pid_peak = _memory_kib(pid)
        rss += pid_rss
        peak += pid_peak
    return TreeSample(cpu, rss * 1024, peak * 1024, tuple(pids))


def sample_cgroup(directory: Path) -> TreeSample:
    """CPU seconds (cgroup v1 ``cpuacct.usage``) and memory of the processes of a cgroup, now.

    For a container run by the node's containerd (a pod's process is a host process in a
    cgroup of the kubelet's), where /proc's parent links do not lead from one pid we started.
    """
    cpu = int((directory / "cpuacct.usage").read_text()) / 1e9
    pids = tuple(int(line) for line in (directory / "cgroup.procs").read_text().split())
    rss = peak = 0
    for pid in pids:
        pid_rss, pid_peak = _memory_kib(pid)
        rss += pid_rss
        peak += pid_peak
    return TreeSample(cpu, rss * 1024, peak * 1024, pids)
