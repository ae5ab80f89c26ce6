"""``sealtrail collect``: collect from a folder or a disk image into a sealed, signed bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.acquisition.collection import VolatileCapture
from sealtrail.acquisition.image_collection import (
    DEFAULT_STALL_LIMIT,
    ImageJob,
    image_requested,
    run_image_collection,
)
from sealtrail.acquisition.session import CollectionResult, requested_fields, run_collection
from sealtrail.cli.options import case_argument, key_option, load_signing_key
from sealtrail.cli.progress import ProgressLine
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.source import DirectorySource
from sealtrail.collectors.volatile import capture_volatile
from sealtrail.custody.case import Case
from sealtrail.terminal import printable


def parse_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "")
    try:
        return int(float(number) * units[unit])
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size like 500M or 2G") from None


@click.command("collect")
@case_argument
@click.option("--source", "source_dir", required=True, type=click.Path(path_type=Path),
              help="Root of the host file system (a mounted image, or / on a live host), or "
                   "a disk image file: raw/dd, split raw (.001), E01, qcow2, a block device.")
@key_option()
@click.option("--artifact", "artifacts", multiple=True,
              help="ForensicArtifacts name to collect (repeatable; default: the triage set).")
@click.option("--path", "paths", multiple=True,
              help="Extra glob relative to the source root, ** recursive (repeatable).")
@click.option("--os", "os_name", type=click.Choice(["linux", "windows", "darwin"]),
              help="Operating system of the source (default: detected).")
@click.option("--max-file-size", callback=parse_size,
              help="Skip larger files (e.g. 2G). Without it, only sparse files (with holes) "
                   "over 1G are skipped.")
@click.option("--location", help="Where the collection takes place (custody record).")
@click.option("--authority", help="Case number, warrant or legal hold (custody record).")
@click.option("--note", help="Free-text note for the ledger.")
@click.option("--partition", type=int,
              help="Image sources: collect from this partition only (numbers as in "
                   "'sealtrail image info'; default: every partition with a file system).")
@click.option("--include-deleted", is_flag=True,
              help="Image sources: also collect deleted files whose content is intact "
                   "(flagged deleted in the manifest).")
@click.option("--bodyfile/--no-bodyfile", default=None,
              help="Add a TSK bodyfile of the whole file system (default: on for images "
                   "with the triage set, off for folders).")
@click.option("--time-limit", type=click.FloatRange(min=1), default=None,
              help="Image sources: kill the image worker after this many seconds in all.")
@click.option("--stall-limit", type=click.FloatRange(min=1), default=DEFAULT_STALL_LIMIT,
              show_default=True,
              help="Image sources: kill the image worker after this many seconds without "
                   "progress.")
@click.option("--volatile/--no-volatile", default=None,
              help="Capture processes, sockets, sessions, mounts, modules and the clock from "
                   "/proc before any file (default: on when the source is /).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(case_dir: Path, source_dir: Path, key_path: Path, artifacts: tuple[str, ...],
            paths: tuple[str, ...], os_name: str | None, max_file_size: int | None,
            location: str | None, authority: str | None, note: str | None,
            partition: int | None, include_deleted: bool, bodyfile: bool | None,
            time_limit: float | None, stall_limit: float, volatile: bool | None,
            as_json: bool) -> None:
    """Collect evidence from a folder or a disk image into a signed bundle in CASE/bundles/.

    \b
    Examples:
      sealtrail collect case1 --source /mnt/web01 --key alice.key
      sealtrail collect case1 --source / --artifact LinuxAuthLogs --path 'srv/data/**'
      sealtrail collect case1 --source web01.E01 --key alice.key --include-deleted
      sealtrail collect case1 --source disk.raw --partition 2 --path 'var/log/**'
    """
    key = load_signing_key(key_path)
    case = Case.load(case_dir)
    case.require_signer(case.ledger(), key)
    custody = {k: v for k, v in (("location", location), ("authority", authority),
                                 ("note", note)) if v}
    if source_dir.exists() and not source_dir.is_dir():
        if volatile:
            raise click.UsageError("--volatile applies to a live host (--source /), not an image")
        job = ImageJob(
            image=str(source_dir), partition=partition, include_deleted=include_deleted,
            bodyfile=bodyfile if bodyfile is not None else not artifacts,
            artifacts=artifacts, paths=paths, os_name=os_name, max_file_size=max_file_size,
        )
        progress = ProgressLine(0, 0)

        def planned(items: int, nbytes: int) -> None:
            progress.total_files, progress.total_bytes = items, nbytes

        result = run_image_collection(
            case, key, job,
            requested=image_requested(artifacts, paths, os_name, max_file_size, job),
            custody=custody or None, progress=progress, on_planned=planned,
            stall_limit=stall_limit, time_limit=time_limit,
        )
        progress.done()
        _report(result, as_json)
        return
    if partition is not None or include_deleted:
        raise click.UsageError("--partition and --include-deleted apply to image sources only")
    source = DirectorySource(source_dir)
    # Order of volatility (RFC 3227): live state first, before the file walk takes its time.
    captures = capture_live_state() if (source.is_live if volatile is None else volatile) else []
    plan = plan_collection(source, artifact_names=artifacts, path_globs=paths,
                           os_name=os_name, max_file_size=max_file_size)
    total_bytes = sum(i.info.size for i in plan.items if i.outcome is None and i.info)
    progress = ProgressLine(len(plan.items), total_bytes)
    result = run_collection(
        case, key, source, plan,
        source_label=str(source_dir.resolve()),
        requested=requested_fields(artifacts, paths, plan.os_name, max_file_size,
                                   bodyfile=bool(bodyfile)),
        custody=custody or None,
        progress=progress,
        bodyfile=bool(bodyfile),
        volatile=captures,
    )
    progress.done()
    _report(result, as_json)


def capture_live_state() -> list[VolatileCapture]:
    try:
        return [VolatileCapture(c.name, c.data, c.captured_at, c.description)
                for c in capture_volatile()]
    except OSError as exc:
        raise click.ClickException(f"cannot capture volatile state: {exc.strerror}") from exc


def _report(result: CollectionResult, as_json: bool) -> None:
    summary = {
        "bundle_id": result.bundle_id,
        "bundle": result.bundle_path,
        "manifest_sha256": result.manifest_sha256,
        "members": result.members,
        "bytes": result.bytes,
        "outcomes": result.outcomes,
        "seconds": round(result.seconds, 3),
        "ledger_entry": result.ledger_index,
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    click.echo(f"sealed {printable(result.bundle_path)}")
    click.echo(f"  {result.members} members, {result.bytes:,} bytes in {result.seconds:.2f} s")
    click.echo("  outcomes: " + ", ".join(f"{k} {v}" for k, v in result.outcomes.items()))
    click.echo(f"  manifest sha256 {result.manifest_sha256} (ledger entry {result.ledger_index})")
