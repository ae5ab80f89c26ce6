"""Artifact extraction from an ext4 image, and its metadata walk, against same-run references.

Usage: python bench/bench_images.py [--size-mb 1000] [--runs 3] [--keep] [--profile]
       [--only extract|walk] [--stage-buffers N] [--hash-thread]

Builds (cached under bench/out/images/, reused while its manifest matches) a fixed-seed folder
of ~1 GB (a few thousand files of 1-200 KB, ~60 of 1-10 MB, 3 of 60-200 MB; log-like text
and random bytes, nested folders) and an ext4 image of it made with
``mkfs.ext4 -d FOLDER -F IMG SIZE`` (no mount). Then, interleaved, median of ``--runs``:

A. extraction. Reference: ``os.walk`` + ``readinto`` a reused 1 MiB buffer + ``hashlib.sha256``
   of every file in the folder (in this process). sealtrail: ``run_image_collection`` of the
   image with a ``--path '**'`` job (``paths=("**",)``, no artifacts, no bodyfile) into a fresh
   case, in a fresh Python process (the bundle is deleted after each run). Rate = bytes of file
   content / seconds; target >= 0.8 of the reference. Peak RSS: the collecting process's own
   high-water mark (VmHWM) and the largest of its children (the image worker, forked, and the
   SHA-256 helper; ``ru_maxrss``, which for a child counts pages it shares with its parent
   and, across exec, the parent's memory at the start). For context, a "copy floor" is timed
   in the same loop: in one Python thread, read every file of the folder, SHA-256 and CRC-32
   it and append it to one output file, fsync at the end: the work the collecting side
   cannot avoid (hash, CRC of the ZIP member, write, fsync at the seal) without the worker
   process, the pipe and the bundle.
   And a "disk floor": the same number of bytes written from memory to one new file in 8 MiB
   blocks with ``O_DIRECT`` (as the bundle writer does), then fsync: no read, no hash. The
   reference writes nothing; sealtrail has to write every byte into the bundle, so no run can
   beat the disk floor of its moment (this VM's disk moved between ~1.0 and ~2.1 GB/s).
B. metadata walk. Reference: ``fls -r -m / IMG > /dev/null`` (wall clock, process included).
   sealtrail: in a fresh process, open the image (``open_image``, ``open_img``,
   ``read_layout``, ``ImageSource``) and run ``write_bodyfile`` (the function the image worker
   uses for the bodyfile member) into a sink that only counts bytes; timed from before the
   open to the last line. Ratio fls / sealtrail, target >= 1.0. Both outputs are counted (entry
   lines) and compared. For context, ``run_image_collection`` with ``bodyfile=True`` and a glob
   that matches nothing is timed too (worker start, walk, pipe, bundle, signatures, seal).

Both sides read from the page cache (the folder and the image together are ~2 GB and are read
once before timing); dirty pages are flushed (``sync``) before every run. MB = 10^6 bytes.
``--profile`` prints a cProfile of one extraction and one walk (in the worker's code paths).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

from machine import (  # bench/machine.py (bench/ is on sys.path)
    PEAK_RSS_SOURCE,
    cpu_model,
    disk_floor,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "images"
SEED = 20260601
BUF = 1 << 20

CHILD_COLLECT = r"""
import json, resource, sys, time
from pathlib import Path
from sealtrail.custody.case import Case
from sealtrail.acquisition.image_collection import ImageJob, image_requested, run_image_collection
from sealtrail.custody.keys import SigningKey
root, image, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
buffers, hashing = int(sys.argv[4]), sys.argv[5]
if buffers:  # --stage-buffers: another number of staging buffers
    from sealtrail.custody import direct_file
    direct_file.BUFFERS = buffers
if hashing == "thread":  # --hash-thread: the SHA-256 on a thread, not in the helper process
    from sealtrail.custody import bundle_writer
    bundle_writer.USE_HASH_PROCESS = False
key = SigningKey.generate("bench")
case = Case.init(root, title="bench", examiner="bench", key=key)
if mode == "files-tsk":  # every byte read by TSK in the worker, through shared memory
    from sealtrail.collectors.image_source import ImageSource
    ImageSource.data_runs = lambda self, expected: None
if mode in ("files", "files-tsk"):
    job = ImageJob(image=image, paths=("**",), bodyfile=False)
else:  # bodyfile only: a glob that matches nothing
    job = ImageJob(image=image, paths=("no-such-bench-path",), bodyfile=True)
requested = image_requested((), job.paths, None, None, job)
def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
cpu_self, cpu_children = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
t = time.perf_counter()
result = run_image_collection(case, key, job, requested=requested)
seconds = time.perf_counter() - t
own = peak_rss_kib()
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest child, see main()
print(json.dumps({"seconds": seconds, "bytes": result.bytes, "members": result.members,
                  "outcomes": result.outcomes, "rss_kib": own, "worker_rss_kib": worker,
                  "cpu_parent": cpu(resource.RUSAGE_SELF) - cpu_self,
                  "cpu_worker": cpu(resource.RUSAGE_CHILDREN) - cpu_children}))
"""

CHILD_WALK = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from sealtrail.collectors.bodyfile import write_bodyfile
from sealtrail.collectors.image_source import ImageSource
from sealtrail.collectors.images import open_image
from sealtrail.collectors.tsk import open_img, read_layout
t_import = time.perf_counter() - t0
image, dump = sys.argv[1], sys.argv[2]
out = open(dump, "wb") if dump != "-" else None
nbytes = 0
def sink(chunk):
    global nbytes
    nbytes += len(chunk)
    if out is not None:
        out.write(chunk)
t = time.perf_counter()
handle = open_image(image)
img = open_img(handle)
layout = read_layout(handle, img)
source = ImageSource(handle, layout.partitions[0], img=img)
t_walk = time.perf_counter()
stats = write_bodyfile(source, sink)
end = time.perf_counter()
if out is not None:
    out.close()
print(json.dumps({"seconds": end - t, "walk_seconds": end - t_walk, "import_seconds": t_import,
                  "entries": stats.entries, "bytes": nbytes,
                  "rss_kib": peak_rss_kib()}))
"""

PROFILE = r"""
import cProfile, pstats, shutil, sys, time
from pathlib import Path
from sealtrail.collectors.bodyfile import write_bodyfile
from sealtrail.collectors.image_source import ImageSource
from sealtrail.collectors.images import open_image
from sealtrail.collectors.tsk import open_img, read_layout
from sealtrail.custody.case import Case
from sealtrail.acquisition.image_collection import ImageJob, image_requested, run_image_collection
from sealtrail.custody.keys import SigningKey
image, root = sys.argv[1], Path(sys.argv[2])
def extract():
    key = SigningKey.generate("bench")
    case = Case.init(root, title="bench", examiner="bench", key=key)
    job = ImageJob(image=image, paths=("**",))
    run_image_collection(case, key, job, requested=image_requested((), job.paths, None, None, job))
def walk():
    handle = open_image(image)
    img = open_img(handle)
    write_bodyfile(ImageSource(handle, read_layout(handle, img).partitions[0], img=img),
                   lambda b: None)
for fn, what in ((extract, "the collecting process (parent side) of one extraction"),
                 (walk, "one open + write_bodyfile")):
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.runcall(fn)
    print(f"--- cProfile of {what} ({time.perf_counter() - t:.2f} s under the profiler)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)
shutil.rmtree(root, ignore_errors=True)
"""


# -- the data set ------------------------------------------------------------------------------


def _text_block(rng: random.Random, size: int) -> bytes:
    words = [b"sshd", b"cron", b"kernel", b"GET", b"/index.html", b"200", b"session", b"opened",
             b"user", b"root", b"alice", b"failed", b"accepted", b"from", b"port", b"10.0.0.7"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def plan_files(total: int) -> list[tuple[str, int, str]]:
    """(relative path, size, kind) for a data set of about ``total`` bytes (fixed seed)."""
    rng = random.Random(SEED)
    files: list[tuple[str, int, str]] = []
    large = [int(total * f) for f in (0.06, 0.11, 0.20)]  # ~60, 110, 200 MB at 1 GB
    for i, size in enumerate(large):
        files.append((f"big/image-{i}.bin", size, "random"))
    medium_total = int(total * 0.33)
    i = 0
    while medium_total > 0:
        size = min(medium_total, rng.randint(1_000_000, 10_000_000))
        files.append((f"media/m{i % 7}/file-{i:04d}.dat", size, rng.choice(("random", "text"))))
        medium_total -= size
        i += 1
    small_total = total - sum(s for _, s, _ in files)
    i = 0
    while small_total > 0:
        size = min(small_total, rng.randint(1_000, 200_000))
        folder = f"home/u{i % 13}/docs/d{(i // 13) % 17}"
        files.append((f"{folder}/f-{i:05d}.{rng.choice(('txt', 'log', 'bin'))}", size,
                      rng.choice(("random", "text", "text"))))
        small_total -= size
        i += 1
    return files


def build_data(size_mb: int) -> tuple[Path, Path, dict]:
    total = size_mb * 1_000_000
    base = OUT / f"{size_mb}MB"
    folder, image, manifest_path = base / "tree", base / "tree.img", base / "manifest.json"
    files = plan_files(total)
    want = {"seed": SEED, "files": len(files), "bytes": sum(s for _, s, _ in files)}
    if manifest_path.exists() and image.exists():
        if json.loads(manifest_path.read_text()).get("data") == want:
            print(f"data set: reusing {base.relative_to(ROOT)}")
            return folder, image, want
    shutil.rmtree(base, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(SEED + 1)
    t = time.perf_counter()
    for rel, size, kind in files:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            left = size
            while left:
                n = min(left, 4 << 20)
                out.write(os.urandom(n) if kind == "random" else _text_block(rng, n))
                left -= n
    img_bytes = int(want["bytes"] * 1.25) + (64 << 20)
    img_bytes -= img_bytes % 4096
    subprocess.run(["mkfs.ext4", "-q", "-d", str(folder), "-F", str(image), str(img_bytes // 1024)
                    + "k"], check=True, stdout=subprocess.DEVNULL)
    manifest_path.write_text(json.dumps({"data": want}))
    print(f"data set: built {base.relative_to(ROOT)} in {time.perf_counter() - t:.1f} s")
    return folder, image, want


# -- the runs --------------------------------------------------------------------------------


def reference_hash(folder: Path) -> tuple[float, int]:
    buffer = bytearray(BUF)
    view = memoryview(buffer)
    total = 0
    t = time.perf_counter()
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            digest = hashlib.sha256()
            with open(os.path.join(dirpath, name), "rb", buffering=0) as handle:
                while n := handle.readinto(buffer):
                    digest.update(view[:n])
                    total += n
            digest.hexdigest()
    return time.perf_counter() - t, total


def copy_floor(folder: Path) -> float:
    """What the collecting side cannot avoid, in one Python thread: read every file, SHA-256
    and CRC-32 it, append it to one output file, fsync that file at the end."""
    buffer = bytearray(BUF)
    view = memoryview(buffer)
    target = OUT / "floor.out"
    t = time.perf_counter()
    with open(target, "wb", buffering=0) as out:
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                digest, crc = hashlib.sha256(), 0
                with open(os.path.join(dirpath, name), "rb", buffering=0) as handle:
                    while n := handle.readinto(buffer):
                        chunk = view[:n]
                        digest.update(chunk)
                        crc = zlib.crc32(chunk, crc)
                        out.write(chunk)
        os.fsync(out.fileno())
    seconds = time.perf_counter() - t
    target.unlink()
    return seconds


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


#: What the collection runs with (``--stage-buffers``, ``--hash-thread``); defaults: sealtrail's.
VARIANT = {"buffers": 0, "hashing": "process"}


def sealtrail_collect(image: Path, mode: str) -> dict:
    case = OUT / "case"
    shutil.rmtree(case, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SOURCE + CHILD_COLLECT, str(case),
                          str(image), mode, str(VARIANT["buffers"]), str(VARIANT["hashing"])],
                         capture_output=True, text=True, check=True, env=_env()).stdout
    shutil.rmtree(case, ignore_errors=True)
    return json.loads(out)


def fls_walk(image: Path) -> float:
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["fls", "-r", "-m", "/", str(image)], stdout=null, check=True)
    return time.perf_counter() - t


def sealtrail_walk(image: Path, dump: str = "-") -> dict:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SOURCE + CHILD_WALK, str(image), dump],
                         capture_output=True, text=True, check=True, env=_env()).stdout
    return json.loads(out)


def compare_listings(image: Path) -> list[str]:
    """Count both listings' entries and explain the difference."""
    fls_out = subprocess.run(["fls", "-r", "-m", "/", str(image)], capture_output=True,
                             check=True).stdout.splitlines()
    dump = OUT / "sealtrail.body"
    ours_run = sealtrail_walk(image, str(dump))
    ours = dump.read_bytes().splitlines()
    dump.unlink()

    def name(line: bytes) -> bytes:
        return line.split(b"|")[1]

    fls_names = {name(x) for x in fls_out}
    our_names = {name(x) for x in ours}
    only_fls = sorted(fls_names - our_names)
    only_ours = sorted(our_names - fls_names)
    lines = [f"entries: fls -r -m {len(fls_out):,} lines, sealtrail bodyfile "
             f"{ours_run['entries']:,} lines ({len(ours):,} read back); names in fls only: "
             f"{len(only_fls)}, in sealtrail only: {len(only_ours)}"]
    for label, names in (("fls only", only_fls), ("sealtrail only", only_ours)):
        if names:
            shown = ", ".join(n.decode("utf-8", "backslashreplace") for n in names[:6])
            more = f" (+{len(names) - 6} more)" if len(names) > 6 else ""
            lines.append(f"  {label}: {shown}{more}")
    same = fls_names & our_names
    fls_by = {name(x): x.split(b"|")[2:] for x in fls_out}
    our_by = {name(x): x.split(b"|")[2:] for x in ours}
    differ = [n for n in same if fls_by[n] != our_by[n]]
    lines.append(f"  of {len(same):,} names in both, {len(differ)} lines differ in inode, mode, "
                 "uid, gid, size or times")
    for n in differ[:3]:
        lines.append(f"    {n.decode('utf-8', 'backslashreplace')}: fls "
                     f"{b'|'.join(fls_by[n]).decode()} / sealtrail "
                     f"{b'|'.join(our_by[n]).decode()}")
    return lines


def machine() -> str:
    model = cpu_model()
    import pytsk3

    fls_v = subprocess.run(["fls", "-V"], capture_output=True, text=True).stdout.strip()
    mkfs_v = subprocess.run(["mkfs.ext4", "-V"], capture_output=True,
                            text=True).stderr.splitlines()[0].strip()
    return (f"machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"pytsk3 {pytsk3.get_version()}, {fls_v}, {mkfs_v}, Linux {platform.release()}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def extraction(args: argparse.Namespace, folder: Path, image: Path, nbytes: int) -> None:
    ref_s, ours_s, floor_s, rss, worker_rss, cpu_s, tsk_s = [], [], [], [], [], [], []
    disk_s: list[float] = []
    for run in range(1, args.runs + 1):
        os.sync()
        seconds, read = reference_hash(folder)
        assert read == nbytes, (read, nbytes)
        ref_s.append(seconds)
        os.sync()
        floor_s.append(copy_floor(folder))
        os.sync()
        disk_s.append(disk_floor(OUT, nbytes))
        os.sync()
        got = sealtrail_collect(image, "files")
        assert got["bytes"] == nbytes, (got["bytes"], nbytes)
        ours_s.append(got["seconds"])
        rss.append(got["rss_kib"])
        worker_rss.append(got["worker_rss_kib"])
        cpu_s.append(got["cpu_parent"] + got["cpu_worker"])
        os.sync()
        tsk_s.append(sealtrail_collect(image, "files-tsk")["seconds"])
        print(f"  run {run}: reference {seconds:.2f} s, copy floor {floor_s[-1]:.2f} s, "
              f"disk floor {disk_s[-1]:.2f} s, "
              f"sealtrail {got['seconds']:.2f} s ({got['members']} members, outcomes "
              f"{got['outcomes']}, peak RSS "
              f"{got['rss_kib'] / 1024:.0f} MiB + worker {got['worker_rss_kib'] / 1024:.0f} MiB, "
              f"CPU {got['cpu_parent']:.2f} s parent (all threads) + {got['cpu_worker']:.2f} s "
              f"image worker and SHA-256 helper); without data runs {tsk_s[-1]:.2f} s")
    ref_rate = nbytes / median(ref_s) / 1e6
    our_rate = nbytes / median(ours_s) / 1e6
    print()
    print("extract every file (median)                 seconds      MB/s")
    print(f"  reference os.walk+read+sha256               {median(ref_s):6.2f}   {ref_rate:7.0f}")
    floor_rate = nbytes / median(floor_s) / 1e6
    print(f"  copy floor read+sha256+crc32+write+fsync    {median(floor_s):6.2f}   "
          f"{floor_rate:7.0f}")
    print(f"  sealtrail run_image_collection --path '**'  {median(ours_s):6.2f}   "
          f"{our_rate:7.0f}")
    disk_rate = nbytes / median(disk_s) / 1e6
    print(f"  disk floor O_DIRECT write, same bytes+fsync {median(disk_s):6.2f}   "
          f"{disk_rate:7.0f}")
    tsk_rate = nbytes / median(tsk_s) / 1e6
    print(f"  context: sealtrail without data runs        {median(tsk_s):6.2f}   "
          f"{tsk_rate:7.0f}  (every byte read by TSK, via shared memory)")
    print(f"  ratio sealtrail/reference: {our_rate / ref_rate:.2f} (target >= 0.80); "
          f"sealtrail/copy floor: {our_rate / floor_rate:.2f}")
    print(f"  the disk floor alone allows a ratio of at most {disk_rate / ref_rate:.2f} (median; "
          f"per run {', '.join(f'{r / d:.2f}' for r, d in zip(ref_s, disk_s, strict=True))});"
          f" sealtrail/disk floor: {our_rate / disk_rate:.2f}")
    busy = median(cpu_s)
    print(f"  sealtrail CPU (parent + child processes, median): {busy:.2f} s; on "
          f"{os.cpu_count()} cores no run could take under {busy / (os.cpu_count() or 1):.2f} s, "
          f"a ratio of at most "
          f"{median(ref_s) / (busy / (os.cpu_count() or 1)):.2f}")
    print(f"  peak RSS: collecting process {max(rss) / 1024:.0f} MiB, largest child "
          f"{max(worker_rss) / 1024:.0f} MiB (max of {args.runs} runs; largest file "
          f"{max(s for _, s, _ in plan_files(args.size_mb * 1_000_000)) / 1e6:.0f} MB)")



def metadata_walk(args: argparse.Namespace, image: Path) -> None:
    print()
    fls_s, walk_s, walk_only, body_s, walk_rss = [], [], [], [], []
    for run in range(1, args.walk_runs + 1):
        os.sync()
        fls_s.append(fls_walk(image))
        got = sealtrail_walk(image)
        walk_s.append(got["seconds"])
        walk_only.append(got["walk_seconds"])
        walk_rss.append(got["rss_kib"])
        body = sealtrail_collect(image, "bodyfile")
        body_s.append(body["seconds"])
        print(f"  run {run}: fls {fls_s[-1] * 1000:.0f} ms, sealtrail open+walk "
              f"{got['seconds'] * 1000:.0f} ms (walk {got['walk_seconds'] * 1000:.0f} ms, "
              f"imports {got['import_seconds'] * 1000:.0f} ms, {got['entries']} entries, "
              f"{got['bytes']:,} bytes), bodyfile-only collection {body['seconds'] * 1000:.0f} ms")
    print()
    print("metadata walk (median)                           ms")
    print(f"  reference fls -r -m / IMG > /dev/null      {median(fls_s) * 1000:8.0f}")
    print(f"  sealtrail open image + write_bodyfile      {median(walk_s) * 1000:8.0f}")
    print(f"    of which the walk (write_bodyfile)       {median(walk_only) * 1000:8.0f}")
    print(f"  context: run_image_collection, bodyfile    {median(body_s) * 1000:8.0f}"
          "  (worker, pipe, bundle, ledger, seal)")
    print(f"  ratio fls/sealtrail: {median(fls_s) / median(walk_s):.2f} (target >= 1.00); "
          f"walk alone: {median(fls_s) / median(walk_only):.2f}")
    print(f"  peak RSS of the walking process: {max(walk_rss) / 1024:.0f} MiB")
    for line in compare_listings(image):
        print(line)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1000, help="data set size, MB (10^6)")
    parser.add_argument("--runs", type=int, default=3, help="extraction runs a side")
    parser.add_argument("--walk-runs", type=int, default=9,
                        help="metadata-walk runs a side (each takes tens of milliseconds, so "
                             "more runs steady the median)")
    parser.add_argument("--only", choices=("extract", "walk"), help="run one part only")
    parser.add_argument("--stage-buffers", type=int, default=0,
                        help="collect with this many staging buffers (default: sealtrail's)")
    parser.add_argument("--hash-thread", action="store_true",
                        help="collect with the SHA-256 on a thread instead of the helper process")
    parser.add_argument("--keep", action="store_true", help="keep the data set and image")
    parser.add_argument("--profile", action="store_true", help="cProfile the worker side")
    args = parser.parse_args()
    VARIANT.update(buffers=args.stage_buffers, hashing="thread" if args.hash_thread else "process")
    print(machine())
    if args.stage_buffers or args.hash_thread:
        print(f"variant: {args.stage_buffers or 'default'} staging buffers, SHA-256 on "
              f"{'a thread' if args.hash_thread else 'the helper process'}")
    folder, image, data = build_data(args.size_mb)
    nbytes = data["bytes"]
    print(f"data: {data['files']} files, {nbytes / 1e6:,.1f} MB; image "
          f"{image.stat().st_size / 1e6:,.0f} MB (ext4, mkfs.ext4 -d); page cache: warm, "
          f"sync before every run; {args.runs} extraction and {args.walk_runs} walk runs a "
          "side, interleaved")
    # warm the page cache with both copies
    reference_hash(folder)
    with image.open("rb") as handle:
        while handle.read(4 << 20):
            pass

    if args.only != "walk":
        extraction(args, folder, image, nbytes)
    if args.only != "extract":
        metadata_walk(args, image)

    if args.profile:
        print()
        env = _env()
        shutil.rmtree(OUT / "case", ignore_errors=True)
        subprocess.run([sys.executable, "-c", PROFILE, str(image), str(OUT / "case")],
                       check=True, env=env)

    if not args.keep:
        shutil.rmtree(OUT, ignore_errors=True)
        print("\nscratch data removed (use --keep to keep it)")


if __name__ == "__main__":
    main()
