"""The engine: rule sources in, findings, their evidence and every rule's outcome out.

Order:
1. Each source's views are created (temporary); a view that fails makes every rule of its
   source ``failed`` with the view's error. Each source's compile failures are ``failed``.
2. Routing: the case's (channel, event_id) pairs and ``events.source`` values are counted once.
   A rule whose ``needs`` or ``sources`` match no rows is ``not_applicable`` and is not run.
3. The other rules run grouped by their routing: for each group, ``events`` names a temporary
   table (or, for fewer than ``MATERIALIZE_AT`` rules, a view) holding only the group's rows (a
   temporary object shadows the case's table of the same name), so a rule reads its partition,
   not the whole timeline. Rules without routing read the whole table. While a partition is a
   table, each source view that ``MATERIALIZE_AT`` or more of its rules read is a temporary
   table too (partitions of up to ``TABLE_VIEWS_UP_TO`` rows; back to the view after the
   group). A rule whose SQL fails, or returns other columns than the contract's, is
   ``failed`` with DuckDB's reason; the others go on. A rule's SQL (and a view's) must be one
   SELECT: a second statement hidden after a semicolon would run with write access.
4. A rule's rows become findings, one per (rule, host, user_name, src_ip, group_key), with ids
   derived from those values, and their evidence; findings the rule made in an earlier run are
   replaced, and those of rules a source no longer has are removed. Marks from the ledger
   (``finding_marked``) are applied to the ids they name.
5. Every rule ends with one ``rule_outcomes`` row; the run gets one ``analysis_runs`` row.

Outcomes: ``matched`` (ran, returned rows), ``no_match`` (ran, returned none),
``not_applicable`` (the case has no rows of its logsource: not run), ``failed`` (did not
compile, its view or SQL failed, or it broke the column contract). A source's compiled rule is
what Sigma's wording calls converted: it ends as matched, no_match or not_applicable.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.canonical import json_text
from sealtrail.errors import AnalysisError
from sealtrail.findings.model import EVIDENCE_COLUMNS, CompiledRule, RuleSource
from sealtrail.findings.tables import ensure_findings_tables

OUTCOMES = ("matched", "no_match", "not_applicable", "failed")
_ROUTED = "events"  # the temporary table or view that shadows the case's events while a group runs
MATERIALIZE_AT = 20  # rules sharing a partition from which it is copied once, not filtered
_ROWS = "sealtrail_rule_rows"
# A piece of file evidence: bundle, member and line; a NULL line (a whole file, e.g. its mode)
# still counts once
_FILE_PLACE = "concat(bundle_id, '|', member_path, '|', line_no)"
# a materialized partition of at most this many rows also gets its shared views as tables
# (bench/bench_sigma.py: the Security channel's ~500k rows with Sigma's columns exceed the
# case database's memory limit; the process_creation rows, ~30k of 1.1M, are the win)
TABLE_VIEWS_UP_TO = 200_000


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule_id: str
    source: str
    title: str
    outcome: str
    reason: str | None = None
    rows_matched: int | None = None
    seconds: float | None = None


@dataclass
class RunReport:
    run_id: str
    started: datetime
    finished: datetime | None = None
    outcomes: list[RuleOutcome] = field(default_factory=list)
    findings: int = 0
    events: int = 0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes:
            counts[outcome.outcome] += 1
        return counts

    def ran_any(self) -> bool:
        return any(o.outcome in ("matched", "no_match") for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class Marks:
    """finding id -> (mark, note), the last ``finding_marked`` of each id in the ledger."""

    by_id: dict[str, tuple[str, str]] = field(default_factory=dict)


def _length_prefixed(names: Iterable[str]) -> str:
    return ", ".join(f"coalesce(CAST(length({n}) AS VARCHAR) || ':' || {n}, '-')" for n in names)


def finding_id_sql(rule_id: str, alias: str = "") -> str:
    """SQL for a finding's id over the contract's columns: ``F-`` and the first 16 hex digits of
    SHA-256 over the rule id, host, user_name, src_ip and group_key (length-prefixed, so no two
    different tuples give the same text)."""
    rule = _sql_string(rule_id)
    columns = ("host", "user_name", "src_ip", "group_key")
    return (f"'F-' || substr(sha256(concat({_length_prefixed([rule])}, "
            f"{_length_prefixed(alias + n for n in columns)})), 1, 16)")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Routing:
    """Which rows the case has, to decide what a rule may read."""

    def __init__(self, db: CaseDatabase) -> None:
        self.pairs = {(c, e) for c, e in db.execute(
            "SELECT DISTINCT channel, event_id FROM events WHERE channel IS NOT NULL")[1]}
        self.sources = {s for (s,) in db.execute("SELECT DISTINCT source FROM events")[1]}

    def applicable(self, rule: CompiledRule) -> str | None:
        """None if the rule has rows to read, else why not."""
        if rule.needs and not any(self._has(pair) for pair in rule.needs):
            wanted = ", ".join(sorted(f"{c or '*'}/{e if e is not None else '*'}"
                                      for c, e in rule.needs))
            return f"no events of {wanted} in the case"
        if rule.sources and not rule.sources & self.sources:
            return f"no events from {', '.join(sorted(rule.sources))} in the case"
        return None

    def _has(self, pair: tuple[str | None, int | None]) -> bool:
        channel, event_id = pair
        return any((channel is None or channel == c) and (event_id is None or event_id == e)
                   for c, e in self.pairs)


def _route_where(rule: CompiledRule) -> str | None:
    """The WHERE clause of a rule's partition, or None to read the whole table."""
    clauses = []
    if rule.needs:
        pairs = []
        for channel, event_id in sorted(rule.needs, key=repr):
            parts = []
            if channel is not None:
                parts.append(f"channel = {_sql_string(channel)}")
            if event_id is not None:
                parts.append(f"event_id = {int(event_id)}")
            pairs.append("(" + (" AND ".join(parts) or "true") + ")")
        clauses.append("(" + " OR ".join(pairs) + ")")
    if rule.sources:
        clauses.append("source IN (" + ", ".join(_sql_string(s) for s in sorted(rule.sources))
                       + ")")
    return " AND ".join(clauses) or None


def run_rules(db: CaseDatabase, sources: Sequence[RuleSource], run_id: str, *,
              marks: Marks | None = None, rule_sets: dict[str, str] | None = None,
              progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Run every rule of ``sources`` on the case database and write the findings tables.

    Returns the run's report; every rule of every source has exactly one outcome in it.
    """
    report = RunReport(run_id, datetime.now(UTC))
    ensure_findings_tables(db)
    report.events = int(db.execute("SELECT count(*) FROM events")[1][0][0])
    routing = _Routing(db)
    runnable: list[tuple[str, CompiledRule]] = []
    for source in sources:
        for failure in source.failures:
            report.outcomes.append(RuleOutcome(failure.rule_id, failure.source, failure.title,
                                               "failed", failure.reason))
        view_error = _create_views(db, source)
        for rule in source.rules:
            meta = rule.meta
            reason = view_error or routing.applicable(rule)
            if reason is not None:
                outcome = "failed" if view_error else "not_applicable"
                report.outcomes.append(RuleOutcome(meta.rule_id, meta.source, meta.title,
                                                   outcome, reason))
            else:
                runnable.append((source.name, rule))
    runnable.sort(key=lambda item: _route_where(item[1]) or "")
    sharing = Counter(_route_where(rule) for _, rule in runnable)
    views = {source.name: source.views for source in sources}
    current: str | None = None
    routed: str | None = None  # what names the partition now: TABLE, VIEW or nothing
    tabled: dict[str, str] = {}  # views now shadowed by a table of the partition's rows
    try:
        for n, (_name, rule) in enumerate(runnable, 1):
            where = _route_where(rule)
            if where != current:
                _untable(db, tabled)
                _unroute(db, routed)
                routed = None
                if where is not None:
                    routed = _route(db, where, materialize=sharing[where] >= MATERIALIZE_AT)
                    if routed == "TABLE":
                        tabled = _table_views(db, views, [
                            (source, r) for source, r in runnable if _route_where(r) == where])
                current = where
            report.outcomes.append(_run_one(db, rule, run_id))
            if progress:
                progress(n, len(runnable))
    finally:
        _untable(db, tabled)
        _unroute(db, routed)
        db.execute(f"DROP TABLE IF EXISTS temp.{_ROWS}")
    _forget_rules(db, [o for o in report.outcomes if o.outcome != "matched"])
    _forget_gone_rules(db, report.outcomes)
    _apply_marks(db, marks or Marks())
    report.findings = int(db.execute("SELECT count(*) FROM findings WHERE run_id = ?",
                                     [run_id])[1][0][0])
    report.finished = datetime.now(UTC)
    _record(db, report, rule_sets or {})
    return report


def case_events(db: CaseDatabase) -> str:
    """The case's events table named with its catalog: ``main.events`` would name the
    temporary one (the temporary catalog has a ``main`` schema too)."""
    catalog = db.execute("SELECT current_database()")[1][0][0]
    return '"' + catalog.replace('"', '""') + '".main.events'


def _route(db: CaseDatabase, where: str, *, materialize: bool) -> str:
    """Make ``events`` name the partition ``where`` selects: a temporary table when several
    rules read it (copied once, scanned by each), else a temporary view (the filter is pushed
    into the rule's own scan; copying every column of a large partition for one rule costs
    more than the rule)."""
    kind = "TABLE" if materialize else "VIEW"
    db.execute(f"CREATE TEMP {kind} {_ROUTED} AS SELECT * FROM {case_events(db)} "  # noqa: S608 - WHERE built from the rule's routing, quoted
               f"WHERE {where}")
    return kind


def _unroute(db: CaseDatabase, kind: str | None) -> None:
    if kind is not None:
        db.execute(f"DROP {kind} IF EXISTS temp.{_ROUTED}")


def _table_views(db: CaseDatabase, views: dict[str, dict[str, str]],
                 group: Sequence[tuple[str, CompiledRule]]) -> dict[str, str]:
    """While a materialized partition's rules run, each source view that ``MATERIALIZE_AT`` or
    more of them read is a temporary table of its rows over the partition: its columns (for
    Sigma, values extracted from each row's JSON) are computed once, not once per rule.
    Returns view name -> its SELECT, to restore the view after the group."""
    rows = int(db.execute(f"SELECT count(*) FROM temp.{_ROUTED}")[1][0][0])  # noqa: S608 - a constant
    if rows > TABLE_VIEWS_UP_TO:
        return {}
    readers: Counter[tuple[str, str]] = Counter()
    for source, rule in group:
        for name in views.get(source, {}):
            if re.search(rf"\b{re.escape(name)}\b", rule.sql):
                readers[source, name] += 1
    tabled: dict[str, str] = {}
    for (source, name), n in sorted(readers.items()):
        if n < MATERIALIZE_AT or name in tabled:
            continue
        select = views[source][name]
        db.execute(f"DROP VIEW IF EXISTS temp.{name}")
        try:
            db.execute(f"CREATE TEMP TABLE {name} AS {select}")
        except AnalysisError:  # such as out of memory: the view it was
            db.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
        else:
            tabled[name] = select
    return tabled


def _untable(db: CaseDatabase, tabled: dict[str, str]) -> None:
    for name, select in tabled.items():
        db.execute(f"DROP TABLE IF EXISTS temp.{name}")
        db.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
    tabled.clear()


def _create_views(db: CaseDatabase, source: RuleSource) -> str | None:
    for name, select in source.views.items():
        if not name.isidentifier():
            return f"view name {name!r} is not an identifier"
        try:
            db.check_one_select(select)
            db.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
        except AnalysisError as exc:
            return f"view {name} of {source.name}: {exc}"
    return None


def _run_one(db: CaseDatabase, rule: CompiledRule, run_id: str) -> RuleOutcome:
    meta = rule.meta
    started = time.perf_counter()

    def ended(outcome: str, reason: str | None = None, rows: int | None = None) -> RuleOutcome:
        return RuleOutcome(meta.rule_id, meta.source, meta.title, outcome, reason, rows,
                           round(time.perf_counter() - started, 6))

    try:
        db.check_one_select(rule.sql)
        db.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS {rule.sql}")
    except AnalysisError as exc:
        return ended("failed", str(exc))
    names = [row[0] for row in db.execute(f"DESCRIBE {_ROWS}")[1]]
    if tuple(names) != EVIDENCE_COLUMNS:
        return ended("failed", f"returns columns {', '.join(names)}; the contract's are "
                               f"{', '.join(EVIDENCE_COLUMNS)}")
    rows = int(db.execute(f"SELECT count(*) FROM {_ROWS}")[1][0][0])  # noqa: S608 - a constant
    try:
        with db.transaction():
            _replace_findings(db, rule, run_id)
    except AnalysisError as exc:
        return ended("failed", str(exc), rows)
    return ended("matched" if rows else "no_match", None, rows)


def _replace_findings(db: CaseDatabase, rule: CompiledRule, run_id: str) -> None:
    """The rule's findings and evidence, instead of those of its earlier runs."""
    meta = rule.meta
    db.execute("DELETE FROM finding_evidence WHERE finding_id IN "
               "(SELECT finding_id FROM findings WHERE rule_id = ?)", [meta.rule_id])
    db.execute("DELETE FROM findings WHERE rule_id = ?", [meta.rule_id])
    fid = finding_id_sql(meta.rule_id)
    # event evidence names its row (which has its own provenance); file lines their place
    db.execute(
        f"INSERT INTO finding_evidence SELECT DISTINCT {fid} AS finding_id, event_uid, "  # noqa: S608 - SQL from constants and the quoted rule id
        f"CASE WHEN event_uid IS NULL THEN bundle_id END, "
        f"CASE WHEN event_uid IS NULL THEN member_path END, line_no FROM {_ROWS}")
    db.execute(
        f"""INSERT INTO findings
        SELECT {fid} AS finding_id, ?, ?, ?, ?, ?::VARCHAR[], ?::VARCHAR[], min(ts), max(ts),
               host, user_name, src_ip, group_key,
               concat(?, ': ', count(DISTINCT coalesce(event_uid, {_FILE_PLACE})),
                      CASE WHEN count(DISTINCT coalesce(event_uid, {_FILE_PLACE})) = 1
                           THEN ' evidence row' ELSE ' evidence rows' END,
                      CASE WHEN user_name IS NOT NULL THEN ', account ' || user_name END,
                      CASE WHEN src_ip IS NOT NULL THEN ', from ' || src_ip END,
                      CASE WHEN group_key IS NOT NULL THEN ', ' || group_key END,
                      CASE WHEN host IS NOT NULL THEN ', on ' || host END,
                      CASE WHEN min(ts) IS NOT NULL THEN ', ' || strftime(min(ts),
                           '%Y-%m-%dT%H:%M:%SZ') || ' .. ' || strftime(max(ts),
                           '%Y-%m-%dT%H:%M:%SZ') END),
               count(DISTINCT coalesce(event_uid, {_FILE_PLACE})),
               NULL, NULL, ?
        FROM {_ROWS} GROUP BY host, user_name, src_ip, group_key""",  # noqa: S608
        [meta.rule_id, meta.source, meta.title, meta.level, list(meta.tactics),
         list(meta.techniques), meta.title, run_id])


def _forget_rules(db: CaseDatabase, outcomes: Sequence[RuleOutcome]) -> None:
    """A rule that ran and matched nothing (or can no longer run) has no findings any more."""
    ids = sorted({o.rule_id for o in outcomes})
    if not ids:
        return
    db.execute("DELETE FROM finding_evidence WHERE finding_id IN "
               "(SELECT finding_id FROM findings WHERE list_contains(?, rule_id))", [ids])
    db.execute("DELETE FROM findings WHERE list_contains(?, rule_id)", [ids])


def _forget_gone_rules(db: CaseDatabase, outcomes: Sequence[RuleOutcome]) -> None:
    """Findings of a rule source this run read, from a rule the source no longer has (a rule
    removed from the pack or renamed): nothing would ever replace them."""
    by_source: dict[str, set[str]] = {}
    for o in outcomes:
        by_source.setdefault(o.source, set()).add(o.rule_id)
    for source, ids in sorted(by_source.items()):
        gone = ("SELECT finding_id FROM findings WHERE rule_source = ? "
                "AND NOT list_contains(?, rule_id)")
        db.execute(f"DELETE FROM finding_evidence WHERE finding_id IN ({gone})",  # noqa: S608 - a constant
                   [source, sorted(ids)])
        db.execute("DELETE FROM findings WHERE rule_source = ? AND NOT list_contains(?, rule_id)",
                   [source, sorted(ids)])


def _apply_marks(db: CaseDatabase, marks: Marks) -> None:
    for finding_id, (mark, note) in sorted(marks.by_id.items()):
        db.execute("UPDATE findings SET mark = ?, mark_note = ? WHERE finding_id = ?",
                   [mark, note, finding_id])


def _record(db: CaseDatabase, report: RunReport, rule_sets: dict[str, str]) -> None:
    chunk = 500  # rows per INSERT: one statement per rule would cost seconds for 3,000 rules
    for start in range(0, len(report.outcomes), chunk):
        part = report.outcomes[start:start + chunk]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?::BIGINT, ?::DOUBLE)"] * len(part))
        params = [v for o in part for v in (report.run_id, o.rule_id, o.source, o.title,
                                            o.outcome, o.reason, o.rows_matched, o.seconds)]
        db.execute(f"INSERT INTO rule_outcomes VALUES {values}", params)  # noqa: S608 - placeholders
    db.execute("INSERT INTO analysis_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
               [report.run_id, report.started, report.finished, json_text(rule_sets),
                json_text(report.counts()), report.findings, report.events])
