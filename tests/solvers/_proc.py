"""Memory counters of this process from ``/proc/self/status`` (Linux), for the memory tests."""

from __future__ import annotations


def proc_status_kib(field: str) -> int:
    """The value in KiB of ``field`` (``VmRSS``, ``VmHWM``, ...) of /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")
