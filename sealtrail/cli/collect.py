"""``sealtrail collect``: collect from a folder source into a sealed, signed bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.cli.options import case_argument, key_option, load_signing_key
from sealtrail.cli.progress import ProgressLine
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.source import DirectorySource
from sealtrail.custody.case import Case
from sealtrail.custody.session import requested_fields, run_collection


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
              help="Root of the host file system: a mounted image, or / on a live host.")
@key_option()
@click.option("--artifact", "artifacts", multiple=True,
              help="ForensicArtifacts name to collect (repeatable; default: the triage set).")
@click.option("--path", "paths", multiple=True,
              help="Extra glob relative to the source root, ** recursive (repeatable).")
@click.option("--os", "os_name", type=click.Choice(["linux", "windows", "darwin"]),
              help="Operating system of the source (default: detected).")
@click.option("--max-file-size", callback=parse_size, help="Skip larger files (e.g. 2G).")
@click.option("--location", help="Where the collection takes place (custody record).")
@click.option("--authority", help="Case number, warrant or legal hold (custody record).")
@click.option("--note", help="Free-text note for the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(case_dir: Path, source_dir: Path, key_path: Path, artifacts: tuple[str, ...],
            paths: tuple[str, ...], os_name: str | None, max_file_size: int | None,
            location: str | None, authority: str | None, note: str | None,
            as_json: bool) -> None:
    """Collect evidence from a folder into a signed bundle in CASE/bundles/.

    \b
    Examples:
      sealtrail collect case1 --source /mnt/web01 --key alice.key
      sealtrail collect case1 --source / --artifact LinuxAuthLogs --path 'srv/data/**'
    """
    key = load_signing_key(key_path)
    case = Case.load(case_dir)
    case.require_signer(case.ledger(), key)
    source = DirectorySource(source_dir)
    plan = plan_collection(source, artifact_names=artifacts, path_globs=paths,
                           os_name=os_name, max_file_size=max_file_size)
    total_bytes = sum(i.info.size for i in plan.items if i.outcome is None and i.info)
    progress = ProgressLine(len(plan.items), total_bytes)
    custody = {k: v for k, v in (("location", location), ("authority", authority),
                                 ("note", note)) if v}
    result = run_collection(
        case, key, source, plan,
        source_label=str(source_dir.resolve()),
        requested=requested_fields(artifacts, paths, plan.os_name, max_file_size),
        custody=custody or None,
        progress=progress,
    )
    progress.done()
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
    click.echo(f"sealed {result.bundle_path}")
    click.echo(f"  {result.members} members, {result.bytes:,} bytes in {result.seconds:.2f} s")
    click.echo("  outcomes: " + ", ".join(f"{k} {v}" for k, v in result.outcomes.items()))
    click.echo(f"  manifest sha256 {result.manifest_sha256} (ledger entry {result.ledger_index})")
