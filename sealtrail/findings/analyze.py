"""``analyze`` and ``findings mark`` on a case: verification first, the engine, the ledger.

Order of ``analyze_case``:
1. Load the rule sources (the built-in pack; Sigma rules through ``sigma_source`` when paths
   are given), before anything else, so a usage error changes nothing.
2. Verify the case (``check_case``), as ingest and scan do: evidence that fails verification is
   refused, naming the first problem, unless ``force`` (then the ledger entry says so).
3. The case database must exist (``sealtrail ingest`` first). The engine runs every rule and
   writes the findings tables; marks named by the ledger's ``finding_marked`` entries are
   applied, so a mark survives re-runs and rebuilds of the database.
4. The database is checkpointed and closed; its SHA-256 is taken; an ``analyzed`` ledger entry
   records the run id, the rule sets with their SHA-256, the outcome counts, the findings count
   and that digest.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sealtrail.analysis.ingest import IngestRefused
from sealtrail.analysis.store import DATABASE_NAME, CaseDatabase, file_sha256
from sealtrail.custody.case import Case
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.custody.verify import check_case
from sealtrail.errors import AnalysisError, SealtrailError, UsageError
from sealtrail.findings import builtin
from sealtrail.findings.engine import Marks, RunReport, run_rules
from sealtrail.findings.model import LEVELS, STATUSES
from sealtrail.findings.sigma import sigma_source
from sealtrail.findings.tables import ensure_findings_tables, has_findings_tables

MARKS = {"false_positive", "confirmed"}
DEFAULT_LEVELS = ("medium", "high", "critical")
DEFAULT_STATUSES = ("stable", "test")


class NothingRan(SealtrailError):
    """No rule could run (every one failed or had no data): CLI exit status 3."""


@dataclass
class AnalyzeReport:
    run: RunReport
    rule_sets: dict[str, str]
    forced: bool
    database_sha256: str
    ledger_index: int


def rule_set_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 over the relative name and bytes of every file under ``paths`` (sorted)."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            name = file.relative_to(root).as_posix() if root.is_dir() else file.name
            digest.update(name.encode() + b"\x00" + file.read_bytes() + b"\x00")
    return digest.hexdigest()


def ledger_marks(case: Case) -> Marks:
    """The last mark of each finding id in the ledger's ``finding_marked`` entries."""
    by_id: dict[str, tuple[str, str]] = {}
    for entry in case.ledger().entries():
        if entry.action != "finding_marked":
            continue
        subject = entry.fields.get("subject") or {}
        details = entry.fields.get("details") or {}
        finding_id, mark = subject.get("finding_id"), details.get("mark")
        if isinstance(finding_id, str) and mark in MARKS:
            by_id[finding_id] = (mark, str(details.get("note") or ""))
    return Marks(by_id)


def analyze_case(case: Case, key: SigningKey, *, pinned: Sequence[PublicKey] = (),
                 force: bool = False, sigma_paths: Sequence[Path] = (),
                 levels: Sequence[str] = DEFAULT_LEVELS,
                 statuses: Sequence[str] = DEFAULT_STATUSES,
                 progress: Callable[[int, int], None] | None = None) -> AnalyzeReport:
    for value, allowed in ((levels, LEVELS), (statuses, STATUSES)):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise UsageError(f"{', '.join(bad)}: not one of {', '.join(allowed)}")
    sources = [builtin.load_builtin()]
    rule_sets = {builtin.SOURCE: builtin.pack_sha256()}
    if sigma_paths:
        sources.append(sigma_source(sigma_paths, levels=set(levels), statuses=set(statuses)))
        rule_sets["sigma"] = rule_set_sha256(sigma_paths)
    ledger = case.writer(key)
    verification = check_case(case.root, pinned)
    if not verification.ok and not force:
        raise IngestRefused(verification.problems, action="analyze")
    db_path = case.root / DATABASE_NAME
    if not db_path.exists():
        raise AnalysisError(f"{db_path} does not exist: run 'sealtrail ingest' first")
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    with CaseDatabase(db_path) as db:
        run = run_rules(db, sources, run_id, marks=ledger_marks(case), rule_sets=rule_sets,
                        progress=progress)
        db.checkpoint()
    digest = file_sha256(db_path)
    entry = ledger.append(
        key, "analyzed", role="analyst", subject={"run_id": run_id},
        details={"rule_sets": rule_sets, "outcomes": run.counts(), "findings": run.findings,
                 "database": {"file": DATABASE_NAME, "sha256": digest},
                 "forced": not verification.ok,
                 "verification_problems": [str(p) for p in verification.problems][:50]},
    )
    return AnalyzeReport(run, rule_sets, not verification.ok, digest, entry.index)


def mark_finding(case: Case, key: SigningKey, finding_id: str, mark: str, note: str) -> int:
    """Mark a finding (a signed ``finding_marked`` entry, then the database); returns the
    ledger index. The mark is the ledger's: ``analyze`` applies it again on every run."""
    if mark not in MARKS:
        raise UsageError(f"mark {mark!r}: not one of {', '.join(sorted(MARKS))}")
    if not note.strip():
        raise UsageError("a mark needs a --note saying why")
    db_path = case.root / DATABASE_NAME
    with CaseDatabase(db_path, read_only=True) as db:
        rows = (db.execute("SELECT rule_id, title FROM findings WHERE finding_id = ?",
                           [finding_id])[1] if has_findings_tables(db) else [])
    if not rows:
        raise UsageError(f"no finding {finding_id} in {db_path} (run 'sealtrail analyze', "
                         "then 'sealtrail findings')")
    ledger = case.writer(key)
    entry = ledger.append(key, "finding_marked", role="analyst",
                          subject={"finding_id": finding_id},
                          details={"mark": mark, "note": note, "rule_id": rows[0][0],
                                   "title": rows[0][1]})
    with CaseDatabase(db_path) as db:
        ensure_findings_tables(db)
        db.execute("UPDATE findings SET mark = ?, mark_note = ? WHERE finding_id = ?",
                   [mark, note, finding_id])
    return entry.index

