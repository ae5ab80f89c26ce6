"""YARA over every member of every sealed bundle: the only module that imports yara.

- Rules come from a file or a folder (``*.yar``, ``*.yara``, each its own namespace). A rule
  that does not compile is one error naming the file and line.
- The externals used by common rule sets (THOR/LOKI: ``filename``, ``filepath``,
  ``extension``, ``filetype``, ``owner``) are defined (empty) at compile time and set for each
  member at scan time, so such rules compile and can use them.
- Each member is scanned as stored; a ``.gz``, ``.bz2`` or ``.xz`` member is also scanned
  decompressed, up to ``MAX_DECOMPRESSED`` bytes (a bomb is cut there and reported).
- Members up to ``MAX_IN_MEMORY`` are scanned in memory; larger ones are copied to a temporary
  file first (YARA scans files, not streams). Each match call has a time limit.
- Matches become rows in ``yara_matches`` and ``yara_match`` events (at the member's mtime, as
  that is when the matching content was last written); a scan of a bundle with the same rules is
  not repeated; the scan is a signed ledger entry.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yara

from sealtrail.analysis.arrow_rows import write_table
from sealtrail.analysis.ingest import IngestRefused, parse_time
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.schema import EVENT_COLUMNS, INGEST_ERROR_COLUMNS, YARA_MATCH_COLUMNS
from sealtrail.analysis.store import DATABASE_NAME, CaseDatabase
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.canonical import json_text
from sealtrail.custody.case import Case
from sealtrail.custody.extract import read_unverified_manifest
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.custody.verify import check_case, sealed_bundles
from sealtrail.errors import UsageError

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
MAX_IN_MEMORY = 256 << 20
MAX_DECOMPRESSED = 1 << 30
MATCH_TIMEOUT = 120
_ERROR_RE = re.compile(r"^(?P<file>.*)\((?P<line>\d+)\): (?P<message>.*)$")


@dataclass(frozen=True)
class CompiledRules:
    rules: Any
    files: tuple[str, ...]
    sha256: str


def compile_rules(path: Path) -> CompiledRules:
    """Compile a rules file or every ``.yar``/``.yara`` file in a folder."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yar", ".yara"))
        if not files:
            raise UsageError(f"{path} holds no .yar or .yara files")
    elif path.is_file():
        files = [path]
    else:
        raise UsageError(f"rules {path}: no such file or folder")
    digest = hashlib.sha256()
    namespaces: dict[str, str] = {}
    for file in files:
        digest.update(file.name.encode() + b"\x00" + file.read_bytes() + b"\x00")
        namespace = file.stem
        while namespace in namespaces:
            namespace += "_"
        namespaces[namespace] = str(file)
    try:
        rules = yara.compile(filepaths=namespaces, externals=dict.fromkeys(EXTERNALS, ""))
    except yara.SyntaxError as exc:
        match = _ERROR_RE.match(str(exc))
        if match:
            raise UsageError(
                f"rules {match['file']} line {match['line']}: {match['message']}"
            ) from None
        raise UsageError(f"rules {path}: {exc}") from None
    except yara.Error as exc:
        raise UsageError(f"rules {path}: {exc}") from None
    return CompiledRules(rules, tuple(str(f) for f in files), digest.hexdigest())


@dataclass
class ScanReport:
    rules: CompiledRules | None = None
    bundles: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    members: int = 0
    matches: int = 0
    errors: int = 0
    ledger_index: int | None = None


def _externals(source_path: str, owner: object) -> dict[str, str]:
    name = source_path.rsplit("/", 1)[-1]
    return {
        "filename": name,
        "filepath": source_path,
        "extension": ("." + name.rsplit(".", 1)[-1]) if "." in name else "",
        "filetype": "",
        "owner": str(owner or ""),
    }


def _match(rules: Any, stream_opener: Callable[[], Any], size: int | None,
           externals: dict[str, str], limit: int | None = None) -> tuple[list[Any], str | None]:
    """Scan a stream (in memory when small, via a temporary file otherwise)."""
    with stream_opener() as stream:
        if size is not None and size <= MAX_IN_MEMORY:
            data = stream.read()
            return rules.match(data=data, externals=externals, timeout=MATCH_TIMEOUT), None
        note = None
        with tempfile.NamedTemporaryFile(prefix="sealtrail-yara-") as tmp:
            copied = 0
            while chunk := stream.read(1 << 20):
                tmp.write(chunk)
                copied += len(chunk)
                if limit is not None and copied >= limit:
                    note = f"decompressed content cut at {limit} bytes (possible bomb)"
                    break
            tmp.flush()
            return rules.match(tmp.name, externals=externals, timeout=MATCH_TIMEOUT), note


def _strings(match: Any) -> list[dict[str, Any]]:
    out = []
    for string in match.strings:
        for instance in string.instances[:20]:
            out.append({"identifier": string.identifier, "offset": instance.offset,
                        "length": instance.matched_length,
                        "data_hex": bytes(instance.matched_data[:64]).hex()})
    return out


def scan_case(case: Case, key: SigningKey, rules_path: Path, *,
              pinned: tuple[PublicKey, ...] = (), force: bool = False,
              progress: Callable[[int, int], None] | None = None) -> ScanReport:
    ledger = case.writer(key)
    report = ScanReport(rules=compile_rules(rules_path))
    verification = check_case(case.root, pinned)
    if not verification.ok and not force:
        raise IngestRefused(verification.problems, action="scan")
    scanned_at = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix=".scan-", dir=case.root))
    try:
        with CaseDatabase(case.root / DATABASE_NAME) as db:
            _, done_rows = db.execute("SELECT bundle_id FROM yara_scans WHERE rules_sha256 = ?",
                                      [report.rules.sha256])
            done = {r[0] for r in done_rows}
            for bundle_id in sealed_bundles(case):
                if bundle_id in done:
                    report.skipped.append(bundle_id)
                    continue
                _scan_bundle(case, db, bundle_id, report, scanned_at, scratch, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if report.bundles:
        entry = ledger.append(
            key, "yara_scanned", role="analyst", subject={"bundle_ids": report.bundles},
            details={"rules": [Path(f).name for f in report.rules.files],
                     "rules_sha256": report.rules.sha256, "members": report.members,
                     "matches": report.matches, "errors": report.errors,
                     "forced": not verification.ok},
        )
        report.ledger_index = entry.index
    return report


def _scan_bundle(case: Case, db: CaseDatabase, bundle_id: str, report: ScanReport,
                 scanned_at: datetime, scratch: Path,
                 progress: Callable[[int, int], None] | None) -> None:
    assert report.rules is not None
    rules = report.rules.rules
    path = case.bundles_dir / f"{bundle_id}.stb"
    match_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    error_rows: list[tuple[Any, ...]] = []
    members = errors = 0
    with BundleFile(path) as bundle:
        manifest = read_unverified_manifest(bundle)
        host = manifest.collection.host
        records = manifest.members
        for n, record in enumerate(records, 1):
            member = bundle.member(record["name"])
            if member is None:
                continue
            source = record.get("source", {})
            context = MemberContext(bundle_id, member.name, record["sha256"],
                                    source.get("path", member.name), record["size"],
                                    parse_time(source.get("mtime")), host,
                                    lambda m=member: bundle.open_member(m))
            externals = _externals(context.source_path, source.get("uid"))
            passes: list[tuple[bool, Callable[[], Any], int | None, int | None]] = [
                (False, context.opener, record["size"], None)]
            if context.compression:
                passes.append((True, context.open, None, MAX_DECOMPRESSED))
            for decompressed, opener, size, limit in passes:
                members += 1
                try:
                    matches, note = _match(rules, opener, size, externals, limit)
                except Exception as exc:  # noqa: BLE001 - one member's failure is recorded
                    errors += 1
                    error_rows.append((bundle_id, context.source_path, record["sha256"],
                                       "decompressed" if decompressed else "member",
                                       f"YARA scan failed: {type(exc).__name__}: {exc}",
                                       "yara"))
                    continue
                if note:
                    error_rows.append((bundle_id, context.source_path, record["sha256"],
                                       "decompressed", note, "yara"))
                for match in matches:
                    match_rows.append(_match_row(bundle_id, context, record, decompressed,
                                                 match, report.rules.sha256, scanned_at))
                    event_rows.append(_event_row(bundle_id, host, context, record,
                                                 decompressed, match, scanned_at))
            if progress:
                progress(n, len(records))
    out = scratch / bundle_id
    out.mkdir()
    files = {"yara_matches": (YARA_MATCH_COLUMNS, match_rows), "events": (EVENT_COLUMNS,
             event_rows), "ingest_errors": (INGEST_ERROR_COLUMNS, error_rows)}
    for table, (columns, rows) in files.items():
        if rows:
            target = out / f"{table}.parquet"
            write_table(target, columns, rows)
            if table == "events":
                db.insert_events([target], ordered=False)
            else:
                db.load_parquet(table, [target])
    if event_rows:
        db.sort_events()
    db.execute("INSERT INTO yara_scans VALUES (?, ?, ?, ?, ?, ?, ?)",
               [bundle_id, report.rules.sha256, list(report.rules.files), scanned_at,
                members, len(match_rows), errors])
    report.bundles.append(bundle_id)
    report.members += members
    report.matches += len(match_rows)
    report.errors += errors


def _match_row(bundle_id: str, context: MemberContext, record: dict[str, Any],
               decompressed: bool, match: Any, rules_sha256: str,
               scanned_at: datetime) -> tuple[Any, ...]:
    return (bundle_id, context.source_path, record["sha256"], decompressed, match.rule,
            match.namespace, list(match.tags), json_text(match.meta), json_text(_strings(match)),
            rules_sha256, scanned_at)


def _event_row(bundle_id: str, host: str | None, context: MemberContext,
               record: dict[str, Any], decompressed: bool, match: Any,
               scanned_at: datetime) -> tuple[Any, ...]:
    row = dict.fromkeys(name for name, _, _ in EVENT_COLUMNS)
    where = " (decompressed)" if decompressed else ""
    row.update(
        ts=context.mtime or scanned_at,
        ts_desc="file mtime (YARA match)" if context.mtime else "scan time (YARA match)",
        host=host, source="yara", event_type="yara_match", path=context.source_path,
        message=f"YARA rule {match.namespace}.{match.rule} matched {context.source_path}{where}",
        attributes=json_text({"rule": match.rule, "namespace": match.namespace,
                              "tags": list(match.tags), "meta": match.meta,
                              "decompressed": decompressed}),
        bundle_id=bundle_id, member_path=context.source_path, member_sha256=record["sha256"],
        # the rule in the reference: scans with other rules add rows for the same member
        record_ref=f"{'decompressed' if decompressed else 'member'}:{match.namespace}.{match.rule}",
        parser="yara",
        parser_version=yara.__version__,
    )
    return tuple(row.values())
