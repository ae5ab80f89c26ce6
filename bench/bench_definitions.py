"""Loading the ForensicArtifacts catalogue: sealtrail's loader vs the artifacts package's reader.

Reference (same run): the artifacts package's own YamlArtifactsReader over the same files (what
sealtrail used before; pure-Python YAML). Prints the median of 5 runs each and the ratio.
Usage: python bench/bench_definitions.py
"""

from __future__ import annotations

import statistics
import time

from artifacts import reader as artifacts_reader

from sealtrail.collectors import definitions


def reference() -> int:
    folder = definitions.catalogue_dir()
    reader = artifacts_reader.YamlArtifactsReader()
    return sum(1 for path in sorted(folder.glob("*.yaml")) for _ in reader.ReadFile(str(path)))


def sealtrail() -> int:
    return len(definitions._read_folder(definitions.catalogue_dir()))


def main() -> None:
    times: dict[str, list[float]] = {"reference": [], "sealtrail": []}
    counts = {}
    for _ in range(5):
        for name, fn in (("reference", reference), ("sealtrail", sealtrail)):
            start = time.perf_counter()
            counts[name] = fn()
            times[name].append(time.perf_counter() - start)
    ref, ours = (statistics.median(times[k]) for k in ("reference", "sealtrail"))
    print(f"definitions: reference {counts['reference']}, sealtrail {counts['sealtrail']}")
    print(f"reference artifacts YamlArtifactsReader  {ref:.3f} s")
    print(f"sealtrail loader (libyaml + fallback)    {ours:.3f} s")
    print(f"speed-up: {ref / ours:.1f}x")


if __name__ == "__main__":
    main()
