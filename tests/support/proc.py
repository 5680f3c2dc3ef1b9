"""Processes for tests/reliability's soak and bench: what one and its children use, read from Linux's
/proc, and a graceful stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any


def rss_kb(pid: int) -> int:
    """Resident set size in KiB (VmRSS); 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """The direct children of every thread of the process (those alive now)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Children, their children, and so on."""
    found: list[int] = []
    stack = [pid]
    while stack:
        below = children(stack.pop())
        found += below
        stack += below
    return found


def children_rss_kb(pid: int) -> int:
    """RSS of the direct children (the emulator's function workers)."""
    return sum(rss_kb(child) for child in children(pid))


def stop(
    proc: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 60, *, group: bool = False
) -> int:
    """Ask a process to stop with `sig` (a graceful shutdown), kill it (or its whole process group)
    if it has not exited within `timeout`; its exit code."""
    if proc.poll() is not None:
        return int(proc.returncode)
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        return proc.wait(10)
