"""Collection throughput of sealtrail against ``tar | tee | openssl dgst -sha256``.

What is measured (medians of ``--runs`` interleaved runs of each side, same data, same disk):

- reference: ``tar -cf - -C ROOT data | tee OUT.tar | openssl dgst -sha256 > /dev/null`` (bash
  with pipefail), wall clock; OUT.tar is deleted after each run. Bytes = sum of file sizes.
- sealtrail: ``plan_collection`` + ``run_collection`` into a fresh case, in a fresh Python
  process per run (so its peak RSS is its own). Timed inside the child from before the plan to
  after the seal (fsync and rename included); the whole process wall clock (interpreter start
  and imports included) is printed too. Bytes = ``result.bytes``. The bundle is deleted after
  each run except the last, which is then verified.
- verify: ``check_case`` (fresh process, timed inside it) against ``openssl dgst -sha256`` over
  the bundle file; MB/s = bundle file size / seconds for both.

Before every run of either side dirty pages are flushed (``sync``) and the page cache is
dropped (``echo 3 > /proc/sys/vm/drop_caches``) when that works (root); ``--warm`` skips the
drop, not the flush. The output says which.

The data set (``--size-gb``, default 2.2; ``--quick`` ~0.3) is built once under
``bench/out/data/<size>MB/`` from a fixed seed and reused while its manifest matches; it is
deleted at the end unless ``--keep``. MB = 10^6 bytes.

Usage::

    python bench/bench_collect.py            # 2.2 GB, 5 runs a side
    python bench/bench_collect.py --quick    # ~300 MB smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model, peak_rss_kib  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DATA_VERSION = 1
SEED = 20240601
MB = 1_000_000
MiB = 1 << 20

# ---------------------------------------------------------------------------------------------
# data set


_WORDS = (
    b"sshd accepted failed password publickey session opened closed for user root admin "
    b"www-data from port kernel audit cron systemd started stopped unit service error warning "
    b"info debug GET POST /index.html /api/v1/login HTTP/1.1 200 302 404 500 Mozilla curl"
).split()


def _text_block(rng: random.Random, size: int) -> bytes:
    """Log-like, repetitive text (what logs look like to a copier: no structure to exploit)."""
    lines = []
    total = 0
    while total < size:
        line = b"2024-06-%02d %02d:%02d:%02d host%d %s[%d]: %s\n" % (
            rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
            rng.randint(1, 9), rng.choice(_WORDS), rng.randint(100, 65000),
            b" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14))),
        )
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def _layout(total: int, rng: random.Random) -> list[tuple[str, int, str]]:
    """(relpath under ROOT, size, kind) for a data set of about ``total`` bytes."""
    scale = min(1.0, total / (2.2e9))
    files: list[tuple[str, int, str]] = []
    for i in range(max(50, round(5000 * scale))):
        size = rng.randint(1024, 200 * 1000)
        kind = "text" if i % 2 == 0 else "random"
        ext = "log" if kind == "text" else "bin"
        files.append((f"data/d{i % 23:02d}/s{i % 7}/f{i:05d}.{ext}", size, kind))
    for i in range(max(5, round(200 * scale))):
        size = int(MB * 10 ** rng.uniform(0, 1))  # log-uniform 1-10 MB
        files.append((f"data/medium/m{i % 5}/m{i:04d}.dat", size, "mixed"))
    rest = total - sum(size for _, size, _ in files)
    if rest > 0:
        n_large = max(3, math.ceil(rest / (400 * MB)))
        for i in range(n_large):
            size = rest // n_large + (rest % n_large if i == 0 else 0)
            files.append((f"data/large/images/l{i}.img", size, "mixed"))
    return files


def _write_file(path: Path, size: int, kind: str, rng: random.Random, text: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        written = 0
        block = 0
        while written < size:
            n = min(4 * MiB, size - written)
            if kind == "random" or (kind == "mixed" and block % 2 == 1):
                out.write(os.urandom(n))
            else:
                start = rng.randrange(0, len(text) - n) if n < len(text) else 0
                piece = text[start : start + n]
                while len(piece) < n:
                    piece += text[: n - len(piece)]
                out.write(piece)
            written += n
            block += 1


def ensure_dataset(total: int) -> tuple[Path, int, int]:
    """Build (or reuse) the data set; returns (ROOT, file count, byte count)."""
    root = OUT / "data" / f"{round(total / MB)}MB"
    manifest_path = root / "manifest.json"
    rng = random.Random(SEED)
    layout = _layout(total, rng)
    wanted = {"version": DATA_VERSION, "seed": SEED, "total": total,
              "files": [[rel, size] for rel, size, _ in layout]}
    if manifest_path.exists():
        try:
            have = json.loads(manifest_path.read_text())
        except ValueError:
            have = None
        if have == wanted and all(
            (root / rel).is_file() and (root / rel).stat().st_size == size
            for rel, size, _ in layout
        ):
            print(f"data set: reusing {root}")
            return root, len(layout), sum(size for _, size, _ in layout)
    print(f"data set: building {root} ({total / MB:.0f} MB, {len(layout)} files) ...", flush=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    text = _text_block(rng, 8 * MiB)
    started = time.perf_counter()
    for rel, size, kind in layout:
        _write_file(root / rel, size, kind, rng, text)
    os.sync()
    manifest_path.write_text(json.dumps(wanted))
    print(f"data set: built in {time.perf_counter() - started:.1f} s")
    return root, len(layout), sum(size for _, size, _ in layout)


# ---------------------------------------------------------------------------------------------
# one run of each side


def machine_line() -> str:
    cpu = cpu_model()
    ssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return (f"machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, {ssl}, "
            f"{os.uname().sysname} {os.uname().release}")


def drop_caches(drop: bool = True) -> bool:
    """Flush dirty pages (always) and drop the page cache (if ``drop``); False if not allowed.

    The flush alone keeps one run's write-back (and the discards of the files deleted after
    it) from landing in the next run's time, which matters most in ``--warm`` mode.
    """
    os.sync()
    if not drop:
        return False
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def run_reference(root: Path, scratch: Path) -> float:
    out_tar = scratch / "OUT.tar"
    cmd = f"tar -cf - -C '{root}' data | tee '{out_tar}' | openssl dgst -sha256 > /dev/null"
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    seconds = time.perf_counter() - started
    out_tar.unlink()
    return seconds


def _child(args: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        check=True, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def new_case(scratch: Path, run: int) -> tuple[Path, Path]:
    """A fresh case (created here, outside the timed child) and its key file."""
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import SigningKey, write_key_pair

    key_dir = scratch / f"keys-{run}"
    key = SigningKey.generate("bench")
    key_file, _ = write_key_pair(key, key_dir)
    case_root = scratch / f"case-{run}"
    Case.init(case_root, title="bench", examiner="bench", key=key)
    return case_root, key_file


def child_collect(root: str, case_root: str, key_file: str) -> None:
    """In a fresh process: plan + collect, print one JSON line."""
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import load_private_key

    key = load_private_key(key_file)
    case = Case.load(Path(case_root))
    started = time.perf_counter()
    source = DirectorySource(Path(root))
    plan = plan_collection(source, path_globs=["data/**"], os_name="linux")
    planned = time.perf_counter()
    result = run_collection(
        case, key, source, plan, source_label=root,
        requested=requested_fields([], ["data/**"], "linux", None),
    )
    done = time.perf_counter()
    print(json.dumps({
        "seconds": done - started,
        "plan_seconds": planned - started,
        "bytes": result.bytes,
        "members": result.members,
        "bundle": result.bundle_path,
        "maxrss_kib": peak_rss_kib(),
    }))


def child_verify(case_root: str, public_file: str) -> None:
    from sealtrail.custody.keys import load_public_key
    from sealtrail.custody.verify import check_case

    public = load_public_key(public_file)
    started = time.perf_counter()
    report = check_case(Path(case_root), [public])
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "ok": report.ok, "checked": report.checked,
        "problems": [str(p) for p in report.problems][:5],
        "maxrss_kib": peak_rss_kib(),
    }))


def run_openssl(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["openssl", "dgst", "-sha256", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.2)
    parser.add_argument("--quick", action="store_true", help="~0.3 GB smoke run")
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (>= 3)")
    parser.add_argument("--warm", action="store_true", help="do not drop the page cache")
    parser.add_argument("--keep", action="store_true", help="keep the data set for next time")
    parser.add_argument("--child-collect", nargs=3, metavar=("ROOT", "CASE", "KEY"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-verify", nargs=2, metavar=("CASE", "PUBKEY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_collect:
        child_collect(*args.child_collect)
        return 0
    if args.child_verify:
        child_verify(*args.child_verify)
        return 0
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    print(machine_line())
    total = int((0.3 if args.quick else args.size_gb) * 1e9)
    root, n_files, n_bytes = ensure_dataset(total)
    scratch = OUT / f"collect-run-{os.getpid()}"
    scratch.mkdir(parents=True)
    dropped = False if args.warm else drop_caches()
    print(f"page cache: {'dropped before every run' if dropped else 'warm (not dropped)'}")
    print(f"data: {n_files} files, {n_bytes / MB:.1f} MB; {args.runs} runs a side, interleaved")

    ref_s: list[float] = []
    st_s: list[float] = []
    st_proc: list[float] = []
    rss: list[int] = []
    last: dict[str, object] = {}
    last_case: Path | None = None
    last_key: Path | None = None
    try:
        for run in range(args.runs):
            drop_caches(dropped)
            ref_s.append(run_reference(root, scratch))
            case_root, key_file = new_case(scratch, run)
            drop_caches(dropped)
            last = _child(["--child-collect", str(root), str(case_root), str(key_file)])
            if last["bytes"] != n_bytes:
                raise SystemExit(f"sealtrail collected {last['bytes']} bytes, not {n_bytes}")
            st_s.append(float(last["seconds"]))
            st_proc.append(float(last["process_seconds"]))
            rss.append(int(last["maxrss_kib"]))
            print(f"  run {run + 1}: reference {ref_s[-1]:.2f} s, sealtrail {st_s[-1]:.2f} s "
                  f"(process {st_proc[-1]:.2f} s, plan {float(last['plan_seconds']):.2f} s, "
                  f"peak RSS {rss[-1] / 1024:.0f} MiB)", flush=True)
            if last_case is not None:
                shutil.rmtree(last_case)
            last_case, last_key = case_root, key_file

        ref_med, st_med, proc_med = (statistics.median(v) for v in (ref_s, st_s, st_proc))
        ref_rate, st_rate = n_bytes / MB / ref_med, n_bytes / MB / st_med
        proc_rate = n_bytes / MB / proc_med
        print()
        print("collect (median)                      seconds      MB/s")
        print(f"  reference tar|tee|openssl          {ref_med:8.2f} {ref_rate:9.0f}")
        print(f"  sealtrail plan+collect+seal        {st_med:8.2f} {st_rate:9.0f}")
        print(f"  sealtrail whole process            {proc_med:8.2f} {proc_rate:9.0f}")
        print(f"  ratio sealtrail/reference: {st_rate / ref_rate:.2f} (target >= 0.80); "
              f"whole process: {proc_rate / ref_rate:.2f}")
        print(f"  sealtrail peak RSS: {max(rss) / 1024:.0f} MiB (max of {len(rss)} runs; "
              f"largest file {max(s for _, s, _ in _layout(total, random.Random(SEED))) / MB:.0f}"
              f" MB)")

        if last_case is None or last_key is None:
            raise SystemExit("no sealtrail run completed")
        bundle = Path(str(last["bundle"]))
        bundle_bytes = bundle.stat().st_size
        ver_s: list[float] = []
        ssl_s: list[float] = []
        for _run in range(args.runs):
            drop_caches(dropped)
            ssl_s.append(run_openssl(bundle))
            drop_caches(dropped)
            # the examiner's public key file: load_public_key refuses a private one
            report = _child(["--child-verify", str(last_case), str(last_key.with_suffix(".pub"))])
            if not report["ok"]:
                raise SystemExit(f"verification failed: {report['problems']}")
            ver_s.append(float(report["seconds"]))
        ssl_med, ver_med = statistics.median(ssl_s), statistics.median(ver_s)
        ssl_rate, ver_rate = bundle_bytes / MB / ssl_med, bundle_bytes / MB / ver_med
        print()
        print(f"verify bundle ({bundle_bytes / MB:.1f} MB, median)   seconds      MB/s")
        print(f"  reference openssl dgst -sha256     {ssl_med:8.2f} {ssl_rate:9.0f}")
        print(f"  sealtrail check_case               {ver_med:8.2f} {ver_rate:9.0f}")
        print(f"  ratio sealtrail/reference: {ver_rate / ssl_rate:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
