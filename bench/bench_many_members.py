"""Many small members: walk rate, seal, verify and extract of trees of 100k-200k empty files.

What is measured, for each tree size (``--members``, default 100000 and 200000; empty files,
1,000 a folder, built once under ``bench/out/many/<n>/`` and reused), one run each side per
``--runs`` (default 1; the trees are large), each sealtrail step in a fresh Python process so
its peak RSS (VmHWM) is its own:

- walk: ``find ROOT/data -type f | wc -l`` (reference) against sealtrail's ``plan_collection``
  alone (the walk that lists every file);
- collect: ``tar -cf - -C ROOT data | openssl dgst -sha256`` (reference: read every file and
  hash an archive of the tree) against ``plan_collection`` + ``run_collection`` into a fresh
  case (walk, copy, manifest, seal, ledger entries);
- verify: ``tar -tf OUT.tar | wc -l`` (reference: read every record of an archive of the same
  tree) against ``check_case`` (signature, canonical manifest, every member's size and
  SHA-256);
- extract: ``tar -xf OUT.tar -C DEST`` (reference) against ``extract_bundle`` (what
  ``sealtrail bundle extract --trust`` runs).

Printed per step: seconds, files/s, the ratio sealtrail files/s over the reference's, and the
peak RSS; then the manifest's payload and envelope sizes per member and verify/extract peak RSS
per member and as a multiple of the payload, which is what the format's bound on the manifest
(docs/bundle-format.md section 3) is chosen from. MB = 10^6 bytes, MiB = 2^20.

Usage::

    python bench/bench_many_members.py                     # 100k and 200k
    python bench/bench_many_members.py --members 200000 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model, peak_rss_kib  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "many"
PER_FOLDER = 1000
MB = 1_000_000


def ensure_tree(members: int) -> Path:
    """``OUT/<members>/data/dNNNN/fNNNN.log``, all empty; reused when complete."""
    root = OUT / str(members)
    done = root / "complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for start in range(0, members, PER_FOLDER):
        folder = root / "data" / f"d{start // PER_FOLDER:04d}"
        folder.mkdir(parents=True)
        for i in range(min(PER_FOLDER, members - start)):
            os.close(os.open(folder / f"f{i:04d}.log", os.O_WRONLY | os.O_CREAT, 0o644))
    done.write_text(f"{members}\n")
    return root


def _shell(cmd: str) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _child(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                          check=False, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# children: one sealtrail step each, in a fresh process


def child_walk(root: str) -> None:
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource

    base = peak_rss_kib()
    started = time.perf_counter()
    plan = plan_collection(DirectorySource(Path(root)), path_globs=["data/**"], os_name="linux")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "items": len(plan.items),
                      "maxrss_kib": peak_rss_kib(), "base_kib": base}))


def child_collect(root: str, case_root: str, key_file: str) -> None:
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import load_private_key

    key = load_private_key(key_file)
    case = Case.load(Path(case_root))
    base = peak_rss_kib()
    started = time.perf_counter()
    source = DirectorySource(Path(root))
    plan = plan_collection(source, path_globs=["data/**"], os_name="linux")
    result = run_collection(case, key, source, plan, source_label=root,
                            requested=requested_fields([], ["data/**"], "linux", None))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "members": result.members,
                      "bundle": result.bundle_path, "maxrss_kib": peak_rss_kib(),
                      "base_kib": base}))


def child_verify(case_root: str, key_file: str) -> None:
    from sealtrail.custody.keys import load_public_key
    from sealtrail.custody.verify import check_case

    public = load_public_key(key_file)
    base = peak_rss_kib()
    started = time.perf_counter()
    report = check_case(Path(case_root), [public])
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "ok": report.ok, "checked": report.checked,
                      "problems": [str(p) for p in report.problems][:3],
                      "maxrss_kib": peak_rss_kib(), "base_kib": base}))


def child_extract(bundle: str, dest: str, key_file: str) -> None:
    from sealtrail.custody.extract import extract_bundle
    from sealtrail.custody.keys import load_public_key

    public = load_public_key(key_file)
    base = peak_rss_kib()
    started = time.perf_counter()
    result = extract_bundle(Path(bundle), Path(dest), [public])
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "written": len(result.written),
                      "problems": [str(p) for p in result.problems][:3],
                      "maxrss_kib": peak_rss_kib(), "base_kib": base}))


# ---------------------------------------------------------------------------------------------


def manifest_sizes(bundle: Path) -> tuple[int, int]:
    """(payload bytes, envelope bytes) of a bundle's manifest."""
    import base64

    from sealtrail.custody.bundle_format import MANIFEST_MEMBER
    from sealtrail.custody.bundle_reader import BundleFile

    with BundleFile(bundle) as opened:
        member = opened.member(MANIFEST_MEMBER)
        assert member is not None
        envelope = bytes(opened.read_member(member, 1 << 40))
    start = envelope.index(b'"payload":"') + len('"payload":"')
    text = envelope[start:envelope.index(b'"', start)]
    return len(base64.b64decode(text)), len(envelope)


def new_case(scratch: Path) -> tuple[Path, Path, Path]:
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import SigningKey, write_key_pair

    key = SigningKey.generate("bench")
    key_file, public_file = write_key_pair(key, scratch / "keys")
    case_root = scratch / "case"
    Case.init(case_root, title="bench", examiner="bench", key=key)
    return case_root, key_file, public_file


def row(step: str, n: int, ref: float, ours: float, rss_kib: int) -> str:
    return (f"  {step:<8} {ref:9.2f} {n / ref:11,.0f} {ours:9.2f} {n / ours:11,.0f} "
            f"{ref / ours:6.2f} {rss_kib / 1024:9.0f}")


def measure(members: int, runs: int) -> None:
    root = ensure_tree(members)
    data = root / "data"
    times: dict[str, list[tuple[float, float, int]]] = {}
    sizes = (0, 0)
    per_member: dict[str, float] = {}
    for _run in range(runs):
        scratch = OUT / f"run-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            tar = scratch / "OUT.tar"
            ref_walk = _shell(f"find '{data}' -type f | wc -l")
            walk = _child("--child-walk", str(root))
            ref_collect = _shell(f"tar -cf - -C '{root}' data | tee '{tar}' | "
                                 "openssl dgst -sha256")
            case_root, key_file, public_file = new_case(scratch)
            collect = _child("--child-collect", str(root), str(case_root), str(key_file))
            if collect["members"] != members:
                raise SystemExit(f"collected {collect['members']} members, not {members}")
            bundle = Path(str(collect["bundle"]))
            ref_verify = _shell(f"tar -tf '{tar}' | wc -l")
            verify = _child("--child-verify", str(case_root), str(public_file))
            if not verify["ok"]:
                raise SystemExit(f"verification failed: {verify['problems']}")
            (scratch / "ref-x").mkdir()
            ref_extract = _shell(f"tar -xf '{tar}' -C '{scratch / 'ref-x'}'")
            extract = _child("--child-extract", str(bundle), str(scratch / "x"),
                             str(public_file))
            if extract["written"] != members or extract["problems"]:
                raise SystemExit(f"extract wrote {extract['written']}: {extract['problems']}")
            for step, ref, result in (("walk", ref_walk, walk), ("collect", ref_collect, collect),
                                      ("verify", ref_verify, verify),
                                      ("extract", ref_extract, extract)):
                times.setdefault(step, []).append(
                    (ref, float(result["seconds"]), int(result["maxrss_kib"])))
            sizes = manifest_sizes(bundle)
            for step, result in (("collect", collect), ("verify", verify),
                                 ("extract", extract)):
                grown = (int(result["maxrss_kib"]) - int(result["base_kib"])) * 1024
                per_member[step] = grown / members
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{members:,} empty files ({members // PER_FOLDER} folders), {runs} run(s), "
          f"median; load {os.getloadavg()[0]:.2f}")
    print("  step     ref s       ref f/s  sealtrail s  f/s        ratio  peak RSS MiB")
    for step, values in times.items():
        ref = statistics.median(v[0] for v in values)
        ours = statistics.median(v[1] for v in values)
        print(row(step, members, ref, ours, max(v[2] for v in values)))
    payload, envelope = sizes
    print(f"  manifest: payload {payload / MB:.1f} MB ({payload / members:.0f} B/member), "
          f"envelope {envelope / MB:.1f} MB ({envelope / members:.0f} B/member)")
    for step, grown in per_member.items():
        print(f"  {step}: peak RSS above start-up {grown:,.0f} B/member "
              f"({grown * members / payload:.1f}x the payload)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", default="100000,200000",
                        help="comma-separated tree sizes (default 100000,200000)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the trees for next time")
    parser.add_argument("--child-walk", nargs=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-collect", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-verify", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-extract", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name, fn in (("child_walk", child_walk), ("child_collect", child_collect),
                     ("child_verify", child_verify), ("child_extract", child_extract)):
        if getattr(args, name):
            fn(*getattr(args, name))
            return 0
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {sys.version.split()[0]}, "
          f"{os.uname().sysname} {os.uname().release}")
    try:
        for members in (int(n) for n in args.members.split(",")):
            measure(members, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(OUT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
