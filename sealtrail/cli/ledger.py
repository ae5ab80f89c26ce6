"""``sealtrail ledger``: custody acts, history, checkpoints and consistency proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from sealtrail.cli.main import EXIT_PROBLEM
from sealtrail.cli.options import (
    case_argument,
    json_option,
    key_option,
    load_signing_key,
    load_trusted,
    trust_option,
)
from sealtrail.custody.case import Case
from sealtrail.custody.log_proofs import issue_checkpoint, prove_extends
from sealtrail.errors import UsageError
from sealtrail.terminal import printable

CUSTODY_ACTIONS = (
    "transferred", "received", "stored", "examined", "exported", "copied", "sealed",
    "unsealed", "returned", "disposed", "legal_hold", "hold_released", "note",
)


@click.group("ledger")
def command() -> None:
    """Record custody acts, show the history, sign checkpoints and prove consistency."""


@command.command("record")
@case_argument
@key_option()
@click.option("--action", required=True, type=click.Choice(CUSTODY_ACTIONS),
              help="What happened.")
@click.option("--subject", "bundle_id", help="Bundle id the act concerns (default: the case).")
@click.option("--from", "from_custodian", help="Custodian handing over.")
@click.option("--to", "to_custodian", help="Custodian receiving.")
@click.option("--method", help="Transfer method (courier, hand delivery, upload...).")
@click.option("--seal", "seal_number", help="Seal or tracking number.")
@click.option("--location", help="Where it happened.")
@click.option("--storage", help="Where the evidence is stored now.")
@click.option("--authority", help="Case number, warrant or legal hold.")
@click.option("--purpose", help="Why (e.g. 'analysis by external lab').")
@click.option("--role", default="examiner", show_default=True, help="Your role.")
@click.option("--note", help="Free text.")
def record(case_dir: Path, key_path: Path, action: str, bundle_id: str | None, role: str,
           **fields: str | None) -> None:
    """Append a signed custody act to the ledger.

    Example: sealtrail ledger record case1 --key alice.key --action transferred
    --to "Bob (counsel)" --method "hand delivery" --seal S-0042
    """
    case = Case.load(case_dir)
    key = load_signing_key(key_path)
    ledger = case.writer(key)
    names = {"from_custodian": "from", "to_custodian": "to", "seal_number": "seal"}
    custody = {names.get(k, k): v for k, v in fields.items() if v}
    if bundle_id and not (case.bundles_dir / f"{bundle_id}.stb").exists():
        raise UsageError(f"no sealed bundle {bundle_id} in {case.bundles_dir}")
    subject = {"bundle_id": bundle_id} if bundle_id else {}
    entry = ledger.append(key, action, role=role, subject=subject, custody=custody)
    click.echo(f"ledger entry {entry.index}: {action} recorded")


def _describe(fields: dict) -> str:
    actor = fields.get("actor", {})
    parts = [f"#{fields.get('index')}", str(fields.get("time")), str(fields.get("action")),
             f"by {actor.get('name')} ({actor.get('key_id')}, {actor.get('role')})"]
    subject = fields.get("subject") or {}
    if subject.get("bundle_id"):
        parts.append(f"bundle {subject['bundle_id']}")
    for key, value in sorted((fields.get("custody") or {}).items()):
        parts.append(f"{key}={value}")
    details = fields.get("details") or {}
    for key in ("title", "reason", "members", "bytes", "size", "key_id", "file"):
        if key in details:
            parts.append(f"{key}={details[key]}")
    if "key" in details:
        parts.append(f"key={details['key'].get('name')}({details['key'].get('key_id')})")
    return "  ".join(parts)


@command.command("show")
@case_argument
@json_option
def show(case_dir: Path, as_json: bool) -> None:
    """Print the custody history, oldest first (does not verify; use sealtrail verify).

    Example: sealtrail ledger show case1
    """
    case = Case.load(case_dir)
    for entry in case.ledger().entries():
        if as_json:
            click.echo(json.dumps(entry.fields, sort_keys=True))
        elif entry.fields:
            click.echo(printable(_describe(entry.fields)))
        else:
            click.echo(f"#{entry.index}  (unparseable entry)")


@command.command("repair")
@case_argument
@key_option()
def repair(case_dir: Path, key_path: Path) -> None:
    """Do now what every command that writes to the ledger does first.

    Restores the final newline of a complete last entry, cuts a torn tail aside, moves an
    invalid last line aside (recorded in a signed ledger_repaired entry), and finishes the
    collections a crash interrupted that this key started (bundle_sealed if the bundle passes
    every check, else collection_failed). Damage before the last line is not repaired: see
    docs/ledger-format.md section 7.

    Example: sealtrail ledger repair case1 --key alice.key
    """
    case = Case.load(case_dir)
    done = case.repair(load_signing_key(key_path))
    settled = done.settled
    if settled.restored is not None:
        click.echo(f"ledger entry {settled.restored}: final newline restored")
    if settled.torn_path is not None:
        click.echo(f"torn tail cut and kept in {printable(settled.torn_path.name)}")
    if settled.repaired is not None:
        click.echo(f"ledger entry {settled.repaired.index}: ledger_repaired (invalid last line "
                   f"kept in {printable(settled.repaired.fields['details']['file'])})")
    for entry in done.collections:
        subject = entry.fields["subject"]["bundle_id"]
        click.echo(f"ledger entry {entry.index}: {entry.action} {printable(subject)} (recovered)")
    if not done:
        click.echo("nothing to repair")


@command.command("checkpoint")
@case_argument
@key_option()
@click.option("--out", "out_path", type=click.Path(path_type=Path),
              help="Also write the signed checkpoint here (to hand to counsel).")
def checkpoint(case_dir: Path, key_path: Path, out_path: Path | None) -> None:
    """Sign a checkpoint (C2SP tlog-checkpoint) of the ledger's Merkle tree.

    Example: sealtrail ledger checkpoint case1 --key alice.key --out counsel-2026-03-12.txt
    """
    case = Case.load(case_dir)
    issued = issue_checkpoint(case, load_signing_key(key_path))
    if out_path is not None:
        if out_path.exists():
            raise UsageError(f"{out_path} already exists")
        out_path.write_bytes(issued.text)
    click.echo(issued.text.decode(), nl=False)
    click.echo(f"stored as {printable(issued.path)} (ledger entry {issued.ledger_index} "
               "records it)", err=True)


@command.command("prove")
@case_argument
@click.option("--checkpoint", "checkpoint_path", required=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A checkpoint issued earlier.")
@trust_option("Public key the checkpoint must be signed by (repeatable).")
@json_option
def prove(case_dir: Path, checkpoint_path: Path, trust_paths: tuple[Path, ...],
          as_json: bool) -> None:
    """Prove that today's ledger extends a checkpoint (RFC 9162 consistency proof).

    Exit 1 when it does not: entries were removed, changed or forked since the checkpoint.

    Example: sealtrail ledger prove case1 --checkpoint counsel-2026-03-12.txt --trust alice.pub
    """
    case = Case.load(case_dir)
    result = prove_extends(case, checkpoint_path.read_bytes(), load_trusted(trust_paths),
                           f"checkpoint {checkpoint_path}")
    if as_json:
        click.echo(json.dumps({
            "ok": result.problem is None,
            "checkpoint_size": result.checkpoint.size,
            "ledger_size": result.size,
            "proof": [base64.b64encode(h).decode() for h in result.proof],
            "problem": None if result.problem is None else str(result.problem),
        }, sort_keys=True))
    elif result.problem is None:
        click.echo(f"ok: the ledger ({result.size} entries) extends the checkpoint "
                   f"({result.checkpoint.size} entries)")
        click.echo(f"ledger root: {base64.b64encode(result.root).decode()}")
        click.echo("consistency proof:")
        for node in result.proof:
            click.echo(f"  {base64.b64encode(node).decode()}")
    else:
        click.echo(f"problem: {printable(result.problem)}")
    if result.problem is not None:
        raise SystemExit(EXIT_PROBLEM)
