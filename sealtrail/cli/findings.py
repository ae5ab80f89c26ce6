"""``sealtrail analyze`` and ``sealtrail findings``: rules over the case database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sealtrail.analysis.store import DATABASE_NAME, CaseDatabase
from sealtrail.cli.options import case_argument, key_option, load_signing_key, load_trusted
from sealtrail.custody.case import Case
from sealtrail.findings.analyze import (
    DEFAULT_LEVELS,
    DEFAULT_STATUSES,
    NothingRan,
    analyze_case,
    mark_finding,
)
from sealtrail.findings.engine import OUTCOMES
from sealtrail.findings.listing import list_findings, show_finding, why_empty
from sealtrail.findings.model import LEVELS, STATUSES
from sealtrail.terminal import printable


@click.command("analyze")
@case_argument
@click.option("--sigma", "sigma_paths", multiple=True, type=click.Path(path_type=Path),
              help="A SigmaHQ-format rule file or folder to run too (repeatable).")
@click.option("--level", "levels", multiple=True, type=click.Choice(LEVELS),
              help=f"Sigma rule levels to run (repeatable; default {', '.join(DEFAULT_LEVELS)}).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Sigma rule statuses to run (repeatable; default "
                   f"{', '.join(DEFAULT_STATUSES)}).")
@key_option()
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(path_type=Path),
              help="Public key to pin when verifying before the analysis (repeatable).")
@click.option("--force", is_flag=True, help="Analyze even if verification fails (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def analyze(case_dir: Path, sigma_paths: tuple[Path, ...], levels: tuple[str, ...],
            statuses: tuple[str, ...], key_path: Path, trust_paths: tuple[Path, ...],
            force: bool, as_json: bool) -> None:
    """Verify the case, then run the built-in rules (and --sigma rules) over its events.

    Findings go to the findings tables (see 'sealtrail findings CASE'); every rule's outcome
    to rule_outcomes; the run is a signed ledger entry. Exit 3 when no rule could run.

    Example: sealtrail analyze case1 --key alice.key --trust alice.pub
    """
    case = Case.load(case_dir)
    report = analyze_case(case, load_signing_key(key_path), pinned=load_trusted(trust_paths),
                          force=force, sigma_paths=sigma_paths,
                          levels=levels or DEFAULT_LEVELS, statuses=statuses or DEFAULT_STATUSES)
    run = report.run
    with CaseDatabase(case.root / DATABASE_NAME, read_only=True) as db:
        findings = list_findings(db)
        empty = why_empty(db) if not findings else None
    if as_json:
        click.echo(json.dumps({
            "run_id": run.run_id, "rule_sets": report.rule_sets, "outcomes": run.counts(),
            "rules": [{"rule_id": o.rule_id, "source": o.source, "title": o.title,
                       "outcome": o.outcome, "reason": o.reason, "rows": o.rows_matched}
                      for o in run.outcomes],
            "findings": [_plain(f) for f in findings], "forced": report.forced,
            "database_sha256": report.database_sha256, "ledger_entry": report.ledger_index,
        }, sort_keys=True))
    else:
        _print_run(report, findings, empty)
    if not run.ran_any():
        raise NothingRan(f"no rule could run ({len(run.outcomes)} rules: "
                         f"{counts_text(run.counts())})")


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items())


def _print_run(report: Any, findings: list[dict[str, Any]], empty: str | None) -> None:
    run = report.run
    if report.forced:
        click.echo("warning: analyzed DESPITE verification problems (recorded in the ledger)",
                   err=True)
    counts = run.counts()
    click.echo(f"analysis {run.run_id}: {len(run.outcomes)} rules over {run.events:,} events "
               f"(ledger entry {report.ledger_index})")
    for outcome in OUTCOMES:
        chosen = [o for o in run.outcomes if o.outcome == outcome]
        click.echo(f"  {outcome:<15} {counts[outcome]:>5}")
        if outcome == "failed":
            for o in chosen:
                click.echo(f"    {printable(o.rule_id)}: {printable(o.reason or '')}")
    if not findings:
        click.echo(f"no findings: {empty}")
    else:
        click.echo(f"{len(findings)} findings:")
        _print_findings(findings)
    click.echo(f"database sha256 {report.database_sha256}")


def _print_findings(findings: list[dict[str, Any]]) -> None:
    by_level: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_level.setdefault(f["level"], []).append(f)
    for level in reversed(LEVELS):
        if level not in by_level:
            continue
        click.echo(f"{level} ({len(by_level[level])})")
        for f in by_level[level]:
            mark = f"  [{f['mark']}]" if f["mark"] else ""
            click.echo(f"  {f['finding_id']}  {printable(f['summary'])}{mark}")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v)
            for k, v in row.items()}


class _ListByDefault(click.Group):
    """``findings CASE`` lists; ``findings show|mark ...`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("findings", cls=_ListByDefault)
def findings_group() -> None:
    """List the findings of 'sealtrail analyze', show one with its evidence, or mark one.

    \b
    Examples:
      sealtrail findings case1
      sealtrail findings show case1 F-0123456789abcdef
      sealtrail findings mark case1 F-0123456789abcdef --false-positive --note "CI key" --key a.key
    """


def _database(case_dir: Path) -> CaseDatabase:
    Case.load(case_dir)
    return CaseDatabase(case_dir / DATABASE_NAME, read_only=True)


@findings_group.command("list")
@case_argument
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="Output format.")
def list_command(case_dir: Path, fmt: str) -> None:
    """List the findings, most severe first.

    Example: sealtrail findings case1 --format json
    """
    with _database(case_dir) as db:
        findings = list_findings(db)
        empty = why_empty(db) if not findings else None
    if fmt == "json":
        click.echo(json.dumps([_plain(f) for f in findings], sort_keys=True))
        return
    if not findings:
        click.echo(f"no findings: {empty}")
        return
    _print_findings(findings)


@findings_group.command("show")
@case_argument
@click.argument("finding_id")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="Output format.")
def show_command(case_dir: Path, finding_id: str, fmt: str) -> None:
    """One finding, its rule and every evidence row with the signed bytes it comes from.

    Example: sealtrail findings show case1 F-0123456789abcdef
    """
    with _database(case_dir) as db:
        finding = show_finding(db, finding_id)
    if fmt == "json":
        evidence = [_plain(e) for e in finding.pop("evidence")]
        click.echo(json.dumps(_plain(finding) | {"evidence": evidence}, sort_keys=True))
        return
    for key in ("finding_id", "title", "level", "rule_id", "rule_source", "tactics",
                "techniques", "host", "user_name", "src_ip", "group_key", "first_ts",
                "last_ts", "evidence_count", "mark", "mark_note", "run_id", "summary"):
        value = _plain({key: finding[key]})[key]
        if isinstance(value, list):
            value = ", ".join(value)
        click.echo(f"{key:<15} {printable('-' if value is None else str(value))}")
    click.echo("evidence (ts, type, message; bundle, member, sha256, record):")
    for e in finding["evidence"]:
        where = e["record_ref"] or f"line:{e['line_no']}"
        click.echo(f"  {_plain(e)['ts'] or '-'}  {printable(e['event_type'] or 'file line')}  "
                   f"{printable(e['message'] or '')}")
        click.echo(f"      {printable(e['bundle_id'] or '')} {printable(e['member_path'] or '')}"
                   f" sha256 {e['member_sha256']} {printable(where)}")


@findings_group.command("mark")
@case_argument
@click.argument("finding_id")
@click.option("--false-positive", "mark", flag_value="false_positive",
              help="The finding is not what the rule says.")
@click.option("--confirmed", "mark", flag_value="confirmed", help="The finding is real.")
@click.option("--note", required=True, help="Why (kept in the ledger).")
@key_option()
def mark_command(case_dir: Path, finding_id: str, mark: str | None, note: str,
                 key_path: Path) -> None:
    """Mark a finding as a false positive or confirmed: a signed ledger entry; the mark
    survives re-runs of analyze.

    Example: sealtrail findings mark case1 F-0123456789abcdef --confirmed --note "seen" --key a.key
    """
    if mark is None:
        raise click.UsageError("give --false-positive or --confirmed")
    case = Case.load(case_dir)
    index = mark_finding(case, load_signing_key(key_path), finding_id, mark, note)
    click.echo(f"marked {finding_id} {mark} (ledger entry {index})")
