"""``sealtrail bundle``: look inside a bundle and extract it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from sealtrail.cli.main import EXIT_PROBLEM
from sealtrail.cli.options import load_trusted, trust_option
from sealtrail.custody.bundle_reader import BundleFile, open_manifest
from sealtrail.custody.extract import (
    extract_bundle,
    read_unverified_manifest,
)
from sealtrail.custody.manifest import Manifest
from sealtrail.errors import CustodyError
from sealtrail.terminal import printable


@click.group("bundle")
def command() -> None:
    """Show and extract sealed bundles."""


@contextmanager
def bundle_problem() -> Iterator[None]:
    """A bundle that fails a check (a hostile or damaged one) is a problem found: exit 1."""
    try:
        yield
    except CustodyError as exc:
        click.echo(f"Error: {printable(exc)}", err=True)
        raise SystemExit(EXIT_PROBLEM) from exc


@command.command("show")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path))
@trust_option("Check the manifest signature against this public key (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def show(bundle_path: Path, trust_paths: tuple[Path, ...], as_json: bool) -> None:
    """List a bundle's members with their hashes and outcomes.

    Example: sealtrail bundle show case1/bundles/20261128T101500Z-web01-1a2b3c4d.stb
    """
    trusted = load_trusted(trust_paths)
    with bundle_problem(), BundleFile(bundle_path) as bundle:
        if trusted:
            obj, verified = open_manifest(bundle, trusted)
            manifest = Manifest.from_json_obj(obj, bundle.where)
            signed = (f"signature verified: {printable(verified.signer.name)} "
                      f"({verified.signer.key_id})")
        else:
            manifest = read_unverified_manifest(bundle)
            signed = "signature NOT checked (pass --trust PUBFILE)"
    if as_json:
        click.echo(json.dumps(manifest.to_json_obj(as_read=True), indent=2, sort_keys=True))
        return
    p = printable
    info = manifest.collection
    click.echo(f"bundle {p(manifest.bundle_id)}  case {p(manifest.case_id)}")
    click.echo(f"host {p(info.host)}  os {p(info.os)}  examiner {p(info.examiner)}  key "
               f"{p(info.key_id)}")
    click.echo(f"collected {p(info.started)} .. {p(info.finished)}  {signed}")
    for member in manifest.members:
        src = member.get("source", {})
        flag = "" if member["outcome"] == "collected" else f"  [{p(member['outcome'])}]"
        click.echo(f"{p(member['sha256'])}  {member['size']:>12,}  {p(src.get('path'))}{flag}")
    for entry in manifest.entries:
        src = entry.get("source", {})
        click.echo(f"{'-' * 64}  {'':>12}  {p(src.get('path'))}  [{p(entry['outcome'])}: "
                   f"{p(entry.get('reason'))}]")
    outcomes = (manifest.stored_totals or manifest.totals()).get("outcomes", {})
    click.echo("outcomes: " + ", ".join(f"{p(k)} {p(v)}" for k, v in outcomes.items()))


@command.command("extract")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
@trust_option("Check the manifest signature against this public key first (repeatable).")
def extract(bundle_path: Path, dest: Path, trust_paths: tuple[Path, ...]) -> None:
    """Write a bundle's members into DEST (new or empty), never outside it.

    Each member's SHA-256 is checked as it is written; a mismatch is reported and not kept.

    Example: sealtrail bundle extract case1/bundles/X.stb /tmp/x --trust alice.pub
    """
    trusted = load_trusted(trust_paths)
    with bundle_problem():
        result = extract_bundle(bundle_path, dest, trusted)
    if not result.signature_checked:
        click.echo("warning: signature not checked (pass --trust PUBFILE)", err=True)
    click.echo(f"extracted {len(result.written)} members into {printable(dest)}")
    for problem in result.problems:
        click.echo(f"problem: {printable(problem)}", err=True)
    if result.problems:
        raise SystemExit(EXIT_PROBLEM)
