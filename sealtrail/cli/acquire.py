"""``sealtrail acquire``: stream a whole disk image or device into a sealed, signed bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sealtrail.acquisition.acquire import acquire_image
from sealtrail.cli.options import case_argument, key_option, load_signing_key
from sealtrail.cli.progress import ProgressLine
from sealtrail.custody.case import Case
from sealtrail.terminal import printable

EXIT_STORED_MISMATCH = 1  # like verify: the evidence disagrees with a record of it


@click.command("acquire")
@case_argument
@click.option("--source", "source", required=True, type=click.Path(path_type=Path),
              help="Image file (raw, E01, qcow2, split .001) or block device, read only.")
@key_option()
@click.option("--md5", is_flag=True, help="Also compute MD5 (for parity with EWF tools).")
@click.option("--sha1", is_flag=True, help="Also compute SHA-1 (for parity with EWF tools).")
@click.option("--location", help="Where the acquisition takes place (custody record).")
@click.option("--authority", help="Case number, warrant or legal hold (custody record).")
@click.option("--note", help="Free-text note for the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(case_dir: Path, source: Path, key_path: Path, md5: bool, sha1: bool,
            location: str | None, authority: str | None, note: str | None,
            as_json: bool) -> None:
    """Acquire a whole image or device into one member of a signed bundle in CASE/bundles/.

    The media is read once; SHA-256 (and MD5/SHA-1 when asked) are computed while it is
    written. For an E01 the media is read through libewf and the hashes stored in it are
    compared with the ones computed: a mismatch is sealed into the manifest and the command
    exits with status 1.

    \b
    Examples:
      sealtrail acquire case1 --source web01.raw --key alice.key
      sealtrail acquire case1 --source /dev/sdb --key alice.key --md5 --sha1
      sealtrail acquire case1 --source disk.E01 --key alice.key --json
    """
    key = load_signing_key(key_path)
    case = Case.load(case_dir)
    custody = {k: v for k, v in (("location", location), ("authority", authority),
                                 ("note", note)) if v}
    progress = ProgressLine(1, 0)

    def report(done: int, nbytes: int) -> None:
        progress.total_bytes = max(progress.total_bytes, nbytes)
        progress(done, nbytes)

    result = acquire_image(case, key, source, md5=md5, sha1=sha1, custody=custody or None,
                           progress=report)
    progress.done()
    summary = {
        "bundle_id": result.bundle_id,
        "bundle": result.bundle_path,
        "manifest_sha256": result.manifest_sha256,
        "member": result.member,
        "source": result.source,
        "format": result.format,
        "size": result.size,
        "hashes": result.hashes,
        "outcome": result.outcome,
        "seconds": round(result.seconds, 3),
        "ledger_entry": result.ledger_index,
    }
    if result.stored_hashes:
        summary["stored_hashes"] = result.stored_hashes
        summary["stored_hashes_match"] = result.stored_hashes_match
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        rate = result.size / max(result.seconds, 1e-9) / 1e6
        click.echo(f"sealed {printable(result.bundle_path)}")
        click.echo(f"  {printable(result.member)}: {result.size:,} bytes ({result.format}) in "
                   f"{result.seconds:.2f} s, {rate:,.0f} MB/s")
        for name, value in result.hashes.items():
            click.echo(f"  {name:6} {value}")
        if result.outcome != "collected":
            click.echo(f"  outcome: {result.outcome}")
        if result.stored_hashes:
            verdict = "match" if result.stored_hashes_match else "MISMATCH"
            stored = printable(", ".join(f"{k} {v}" for k, v in result.stored_hashes.items()))
            click.echo(f"  stored hashes ({stored}): {verdict}")
        click.echo(f"  manifest sha256 {result.manifest_sha256} "
                   f"(ledger entry {result.ledger_index})")
    if result.stored_hashes_match is False:
        click.echo("Error: the media read does not match the hashes stored in the image "
                   "(recorded in the sealed manifest)", err=True)
        sys.exit(EXIT_STORED_MISMATCH)
