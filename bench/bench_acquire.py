"""Whole-image acquisition against ``openssl dgst -sha256`` over the same image.

Usage: python bench/bench_acquire.py [--size-mb 1100] [--runs 3] [--md5]

Generates a raw image of incompressible bytes under bench/out (gitignored, kept between runs),
then, interleaved, runs 3 times each: ``openssl dgst -sha256 IMAGE`` and ``sealtrail``'s
`acquire_image` into a fresh case (read, SHA-256, CRC-32, write into the bundle, fsync at the
seal: the whole custody path). Both read the image from the page cache when it fits in RAM,
so this compares CPU paths, not the disk. Reports medians (MB = 10^6 bytes), the ratio and the
peak RSS of the acquisition process (each acquisition runs in a child process, so RSS is its
own), and writes bench/out/results-acquire.md. Target: acquisition >= 0.9 x openssl's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import PEAK_RSS_SOURCE, disk_floor  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "acquire"
RESULTS = HERE / "out" / "results-acquire.md"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from sealtrail.acquisition.acquire import acquire_image
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey
root, image, md5 = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
if sys.argv[4] == "page-cache":  # the path taken where O_DIRECT is refused
    from sealtrail.custody import direct_file
    direct_file.USE_DIRECT_IO = False
key = SigningKey.generate("bench")
case = Case.init(root, title="bench", examiner="bench", key=key)
t = time.perf_counter()
result = acquire_image(case, key, image, md5=md5)
seconds = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
helper = resource.getrusage(resource.RUSAGE_CHILDREN)  # the SHA-256 helper process
print(json.dumps({"seconds": seconds, "sha256": result.hashes["sha256"],
                  "rss_kib": peak_rss_kib(),
                  "cpu": usage.ru_utime + usage.ru_stime + helper.ru_utime + helper.ru_stime}))
"""


def make_image(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(block[:n])
            # vary the bytes so nothing downstream can shortcut repeated blocks
            block = block[1:] + block[:1]
            left -= n


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_openssl(image: Path) -> tuple[float, str, float]:
    cpu = children_cpu()
    t = time.perf_counter()
    out = subprocess.run(["openssl", "dgst", "-sha256", str(image)], capture_output=True,
                         text=True, check=True).stdout
    return time.perf_counter() - t, out.strip().rsplit(" ", 1)[-1], children_cpu() - cpu


def run_acquire(image: Path, md5: bool, path: str = "direct") -> dict[str, float | str]:
    root = OUT / "case"
    shutil.rmtree(root, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SOURCE + CHILD, str(root), str(image),
                          "1" if md5 else "0", path],
                         capture_output=True, text=True, check=True, env=env).stdout
    shutil.rmtree(root, ignore_errors=True)
    return json.loads(out)


HASH_LOOP = r"""
import hashlib, mmap, os, sys, threading, time
image, with_writer, scratch = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
fd = os.open(image, os.O_RDONLY)
view = memoryview(mmap.mmap(-1, 4 << 20))
stop = False
def writer():  # O_DIRECT writes of other bytes, as the bundle writer does beside the hashing
    out = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    block, offset = mmap.mmap(-1, 8 << 20), 0
    while not stop:
        os.pwrite(out, block, offset)
        offset += 8 << 20
    os.close(out)
    os.unlink(scratch)
thread = threading.Thread(target=writer) if with_writer else None
if thread:
    thread.start()
digest, total = hashlib.sha256(), 0
t = time.perf_counter()
while n := os.readv(fd, [view]):
    digest.update(view[:n])
    total += n
seconds = time.perf_counter() - t
stop = True
if thread:
    thread.join()
print(seconds)
"""


def hash_loop(image: Path, with_writer: bool) -> float:
    """Seconds of one Python thread reading the image and hashing it (no bundle), alone or
    with an O_DIRECT writer thread beside it writing as much again to a scratch file."""
    out = subprocess.run([sys.executable, "-c", HASH_LOOP, str(image), "1" if with_writer
                          else "0", str(OUT / "scratch.bin")], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip())


def crc_rates(image: Path, nbytes: int = 512 << 20) -> dict[str, float]:
    """MB/s of zlib.crc32 and of ISA-L's crc32 over the same bytes (in memory)."""
    import zlib

    from isal import isal_zlib

    chunks = []
    with image.open("rb") as f:
        while sum(len(c) for c in chunks) < nbytes and (chunk := f.read(4 << 20)):
            chunks.append(chunk)
    total = sum(len(c) for c in chunks)
    rates = {}
    for name, fn in (("zlib", zlib.crc32), ("isal", isal_zlib.crc32)):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            value = 0
            for chunk in chunks:
                value = fn(chunk, value)
            best = min(best, time.perf_counter() - t)
        rates[name] = total / best / 1e6
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1100, help="image size, MB (10^6)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--md5", action="store_true", help="also time --md5 acquisitions")
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    image = OUT / f"image-{args.size_mb}MB.raw"
    make_image(image, size)
    run_openssl(image)  # warm the page cache
    load_before = os.getloadavg()[0]
    openssl, acquire, acquire_md5, acquire_cached, rss = [], [], [], [], []
    loop_alone: list[float] = []
    loop_writing: list[float] = []
    disk: list[float] = []
    cpu_openssl, cpu_acquire = [], []
    for _ in range(args.runs):
        seconds, digest, cpu = run_openssl(image)
        openssl.append(seconds)
        cpu_openssl.append(cpu)
        result = run_acquire(image, False)
        assert result["sha256"] == digest, "acquisition and openssl disagree"
        acquire.append(float(result["seconds"]))
        cpu_acquire.append(float(result["cpu"]))
        rss.append(int(result["rss_kib"]))
        if args.md5:
            result = run_acquire(image, True)
            acquire_md5.append(float(result["seconds"]))
            rss.append(int(result["rss_kib"]))
        result = run_acquire(image, False, "page-cache")
        assert result["sha256"] == digest, "acquisition and openssl disagree"
        acquire_cached.append(float(result["seconds"]))
        disk.append(disk_floor(OUT, size))
        loop_alone.append(hash_loop(image, False))
        loop_writing.append(hash_loop(image, True))
    crc = crc_rates(image)
    rate = {
        "openssl": size / statistics.median(openssl) / 1e6,
        "acquire": size / statistics.median(acquire) / 1e6,
    }
    if acquire_md5:
        rate["acquire_md5"] = size / statistics.median(acquire_md5) / 1e6
    rate["cached"] = size / statistics.median(acquire_cached) / 1e6
    rate["loop"] = size / statistics.median(loop_alone) / 1e6
    rate["loop_writing"] = size / statistics.median(loop_writing) / 1e6
    rate["disk"] = size / statistics.median(disk) / 1e6
    ratio = rate["acquire"] / rate["openssl"]
    load = f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    peak_mib = max(rss) / 1024
    lines = [
        "# Whole-image acquisition (bench/bench_acquire.py)",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"image {size / 1e6:,.0f} MB of random bytes in the page cache; median of "
        f"{args.runs} runs each, interleaved; MB = 10^6 bytes; {load} "
        "(other work on the machine slows the three-thread acquisition more than the "
        "one-thread openssl).",
        "",
        "| what | MB/s | runs (s) |",
        "|---|---:|---|",
        f"| `openssl dgst -sha256 IMAGE` | {rate['openssl']:,.0f} | "
        f"{', '.join(f'{s:.2f}' for s in openssl)} |",
        f"| `sealtrail acquire` (read + SHA-256 + bundle write + fsync + seal) | "
        f"{rate['acquire']:,.0f} | {', '.join(f'{s:.2f}' for s in acquire)} |",
    ]
    if acquire_md5:
        lines.append(f"| `sealtrail acquire --md5` | {rate['acquire_md5']:,.0f} | "
                     f"{', '.join(f'{s:.2f}' for s in acquire_md5)} |")
    lines.append(f"| the same, bundle written through the page cache (no O_DIRECT) | "
                 f"{rate['cached']:,.0f} | {', '.join(f'{s:.2f}' for s in acquire_cached)} |")
    lines.append(f"| context: one Python thread, `readv` + SHA-256, nothing written | "
                 f"{rate['loop']:,.0f} | {', '.join(f'{s:.2f}' for s in loop_alone)} |")
    lines.append(f"| context: disk floor, the same bytes written from memory with O_DIRECT, "
                 f"fsync | {rate['disk']:,.0f} | {', '.join(f'{s:.2f}' for s in disk)} |")
    lines.append(f"| context: the same loop with an O_DIRECT writer thread beside it | "
                 f"{rate['loop_writing']:,.0f} | {', '.join(f'{s:.2f}' for s in loop_writing)} |")
    lines += [
        "",
        f"CPU seconds per GB (user + sys, median; includes interpreter start-up for "
        f"acquire): openssl {statistics.median(cpu_openssl) / size * 1e9:.2f}, acquire "
        f"{statistics.median(cpu_acquire) / size * 1e9:.2f} (acquire also writes the bundle "
        "and computes the ZIP CRC-32: the calling thread reads into the staging buffer and "
        "computes the CRC-32, a helper process the SHA-256 (its CPU included), a thread "
        "writes full blocks with O_DIRECT).",
        "",
        f"O_DIRECT / page-cache path: {rate['acquire'] / rate['cached']:.2f}. Hash loop / "
        f"openssl: {rate['loop'] / rate['openssl']:.2f} alone, "
        f"{rate['loop_writing'] / rate['openssl']:.2f} with a disk writer beside it. "
        f"CRC-32 over {512} MiB in memory: zlib {crc['zlib']:,.0f} MB/s, ISA-L "
        f"{crc['isal']:,.0f} MB/s (ISA-L / zlib {crc['isal'] / crc['zlib']:.1f}).",
        "",
        f"Ratio acquire / openssl: **{ratio:.2f}** (target >= 0.90). "
        f"Peak RSS of an acquisition process: {peak_mib:,.0f} MiB "
        "(interpreter, libraries, four 8 MiB staging buffers; independent of the image size).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
