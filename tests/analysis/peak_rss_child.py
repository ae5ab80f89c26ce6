"""Run the sealtrail CLI in this process, then print its peak memory to stderr.

``python -m tests.analysis.peak_rss_child query CASE SQL ...`` ends with a line
``peak_rss_kib N``: VmHWM, this process's own high-water mark (ru_maxrss would also count the
process that started it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sealtrail.cli.main import cli


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    try:
        cli(sys.argv[1:], prog_name="sealtrail")
    finally:
        print(f"peak_rss_kib {peak_rss_kib()}", file=sys.stderr)


if __name__ == "__main__":
    main()
