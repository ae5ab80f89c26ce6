"""Facts about the machine a benchmark ran on, for the line each script prints first."""

from __future__ import annotations

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
