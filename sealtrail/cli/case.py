"""``sealtrail case``: open a case and manage which keys it trusts."""

from __future__ import annotations

from pathlib import Path

import click

from sealtrail.cli.options import case_argument, key_option, load_signing_key, load_trusted
from sealtrail.custody.case import Case, declared_keys
from sealtrail.custody.keys import load_public_key
from sealtrail.errors import UsageError
from sealtrail.terminal import printable


@click.group("case")
def command() -> None:
    """Create a case folder and manage its trusted keys."""


@command.command("init")
@case_argument
@click.option("--title", required=True, help="What the case is about.")
@click.option("--examiner", required=True, help="Lead examiner's name.")
@key_option()
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(path_type=Path),
              help="Another examiner's public key to trust from the start (repeatable).")
@click.option("--authority", help="Case number, warrant or legal hold the work rests on.")
@click.option("--location", help="Where the case is opened (site, lab).")
def init(case_dir: Path, title: str, examiner: str, key_path: Path,
         trust_paths: tuple[Path, ...], authority: str | None, location: str | None) -> None:
    """Create CASE with its ledger; the first entry, signed by --key, opens the case.

    Example: sealtrail case init case1 --title "web01 breach" --examiner "Alice" --key alice.key
    """
    key = load_signing_key(key_path)
    case = Case.init(case_dir, title=title, examiner=examiner, key=key,
                     trust=load_trusted(trust_paths), authority=authority, location=location)
    click.echo(f"case {case.case_id} opened in {printable(case.root)}")
    click.echo(f"signed by {printable(key.name)} ({key.key_id}); ledger: "
               f"{printable(case.ledger_path)}")


@command.command("trust")
@case_argument
@click.argument("pubfile", type=click.Path(path_type=Path))
@key_option()
@click.option("--role", default="examiner", show_default=True, help="Role of the new key holder.")
@click.option("--note", help="Why the key is added.")
def trust(case_dir: Path, pubfile: Path, key_path: Path, role: str, note: str | None) -> None:
    """Trust another public key in CASE (a signed ledger entry by an already trusted --key).

    Example: sealtrail case trust case1 bob.pub --key alice.key --note "second examiner"
    """
    case = Case.load(case_dir)
    entry = case.trust(load_public_key(pubfile), load_signing_key(key_path), role, note)
    click.echo(f"ledger entry {entry.index}: key trusted")


@command.command("revoke")
@case_argument
@click.argument("key_id")
@key_option()
@click.option("--reason", required=True, help="Why (e.g. 'laptop stolen').")
def revoke(case_dir: Path, key_id: str, key_path: Path, reason: str) -> None:
    """Revoke a key: its signatures on later ledger entries are rejected.

    Example: sealtrail case revoke case1 3f2a9c0d11e2b7a4 --key alice.key --reason "key leaked"
    """
    case = Case.load(case_dir)
    signer = load_signing_key(key_path)
    ledger = case.writer(signer)
    if key_id not in declared_keys(ledger.entries()):
        raise UsageError(f"key id {key_id} is not a trusted key of case {case_dir}")
    entry = ledger.append(signer, "key_revoked", role="examiner",
                          details={"key_id": key_id, "reason": reason})
    click.echo(f"ledger entry {entry.index}: key {printable(key_id)} revoked")
