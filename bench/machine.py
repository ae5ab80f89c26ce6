"""Facts about the machine a benchmark ran on, for the line each script prints first."""

from __future__ import annotations

import mmap
import os
import random
import sys
import time
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or "?" where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_line(*versions: str) -> str:
    """The line a benchmark prints first: CPUs, Python, the given tool versions, the kernel."""
    return (f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {sys.version.split()[0]}, "
            + "".join(f"{v}, " for v in versions) + f"{os.uname().sysname} {os.uname().release}")


def load_averages() -> str:
    """The 1, 5 and 15 minute load averages, for the lines before and after a run."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


PEAK_RSS_SOURCE = r"""
def peak_rss_kib():
    # VmHWM: this process's own high-water mark. ru_maxrss of RUSAGE_SELF would also count
    # the memory of the process that started this one (Linux keeps it across exec).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
exec(PEAK_RSS_SOURCE)  # defines peak_rss_kib here too; child scripts paste the source


def disk_floor(folder: Path, nbytes: int) -> float:
    """Seconds to write ``nbytes`` (rounded up to a block) from memory into a new file in
    ``folder``, 8 MiB blocks with O_DIRECT (as the bundle writer does), then fsync: the least
    writing a bundle of that size costs this disk at this moment."""
    block = 8 << 20
    buffer = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
    buffer.write(random.Random(1).randbytes(block))
    target = folder / "disk-floor.out"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0)
    t = time.perf_counter()
    fd = os.open(target, flags, 0o644)
    try:
        for offset in range(0, nbytes, block):
            os.pwrite(fd, buffer, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t
    target.unlink()
    buffer.close()
    return seconds
