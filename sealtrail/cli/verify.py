"""``sealtrail verify``: check a case folder or a single bundle, offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.cli.main import EXIT_PROBLEM
from sealtrail.cli.options import json_option, load_trusted, trust_option
from sealtrail.custody.verify import check_case, check_single_bundle
from sealtrail.errors import UsageError
from sealtrail.terminal import printable


@click.command("verify")
@click.argument("target", metavar="CASE_OR_BUNDLE", type=click.Path(path_type=Path))
@trust_option("Public key to trust (repeatable); pins who may have opened the case.")
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A checkpoint held elsewhere; the case's ledger must extend it "
                   "(repeatable; case folders only).")
@json_option
def command(target: Path, trust_paths: tuple[Path, ...], checkpoints: tuple[Path, ...],
            as_json: bool) -> None:
    """Verify every signature, the ledger chain and Merkle tree, and every member's hash.

    Exit 0 when everything holds; exit 1 with one line per problem otherwise.

    \b
    Examples:
      sealtrail verify case1 --trust alice.pub --checkpoint counsel.txt
      sealtrail verify case1/bundles/X.stb --trust alice.pub
    """
    trusted = load_trusted(trust_paths)
    if target.is_dir():
        report = check_case(target, trusted, checkpoints)
    elif target.is_file():
        if not trusted:
            raise UsageError("verifying a bundle on its own needs --trust PUBFILE")
        if checkpoints:
            # A checkpoint covers a case's ledger; a lone bundle has none to check it against.
            raise UsageError("--checkpoint applies to a case folder, not to a single bundle")
        report = check_single_bundle(target, trusted)
    else:
        raise UsageError(f"{target} is neither a case folder nor a bundle file")
    if as_json:
        click.echo(json.dumps(report.to_json_obj(), sort_keys=True))
    else:
        for notice in report.notices:
            click.echo(f"notice: {printable(notice)}")
        for problem in report.problems:
            click.echo(f"problem: {printable(problem)}")
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report.checked.items()))
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
        click.echo(f"{status}: {printable(target)} ({counts})")
    if not report.ok:
        raise SystemExit(EXIT_PROBLEM)
