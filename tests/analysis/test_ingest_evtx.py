"""EVTX through the whole ingest: what the database holds is what the Python path gives.

The workers stage the evtx crate's records as JSON text and the ingest reads them in SQL
(parsers/evtx_sql.py); python-evtx's records, rejections and every other parser keep the Python
path. These tests ingest real and synthetic logs and compare every events row, every
ingest_errors row and every member's account with what ``EvtxParser().parse`` and the worker's
row conversion give for the same bytes.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from sealtrail.analysis.ingest import ingest_case
from sealtrail.analysis.parsers import evtx_sql
from sealtrail.analysis.parsers.evtx_windows import EvtxParser
from sealtrail.analysis.records import EvtxJson
from sealtrail.analysis.schema import EVENT_COLUMNS
from sealtrail.analysis.store import CaseDatabase
from sealtrail.analysis.worker import MemberTask, item_rows
from sealtrail.custody.canonical import parse_json
from sealtrail.custody.case import Case
from tests.analysis.helpers import member_from_file
from tests.analysis.parsers.test_evtx_sql import SYNTHETIC
from tests.conftest import collect, write
from tests.shared_data import upstream_path

# Clean logs and dirty ones: python-evtx recovers a chunk of System2, the bad-chunk-magic and
# zero-size samples have rejections, one record of the former has no TimeCreated (SQL rejects
# it), MSExchange holds forwarded events (9-digit TimeCreated, #text lists).
FILES = ("System2.evtx", "sample_with_a_bad_chunk_magic.evtx",
         "sample-with-zero-data-size-event.evtx", "new-user-security.evtx",
         "EID4103_PowershellModule.evtx", "metasploit-psexec-native-target-system.evtx",
         "MSExchange_Management_wec.evtx", "Security_short_selected.evtx")
COLUMNS = [name for name, _, _ in EVENT_COLUMNS]
FILE_MAGIC_ONLY = b"ElfFile\x00" + bytes(0x1000 - 8)


def expected_rows(case: Case, host: Path, rel: str, bundle_id: str):
    """(events rows, ingest_errors rows) the Python path gives for one member."""
    path = host / rel
    data = path.read_bytes()
    task = MemberTask(0, "", bundle_id, "", hashlib.sha256(data).hexdigest(), "/" + rel,
                      len(data), None, None, (), "")
    events, errors = [], []
    for item in EvtxParser().parse(member_from_file(path)):
        event_row, error_row = item_rows(item, task, EvtxParser.NAME, EvtxParser.VERSION)
        (events if event_row is not None else errors).append(event_row or error_row)
    return events, errors


def normal(row: tuple) -> tuple:
    """A row with its attributes parsed (their JSON text differs between the two paths)."""
    values = dict(zip(COLUMNS, row, strict=True))
    if values["attributes"] is not None:
        values["attributes"] = parse_json(values["attributes"])
    return tuple(values.values())


def db_rows(case: Case, member_path: str):
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        _, events = db.execute(
            f"SELECT {', '.join(chr(34) + c + chr(34) for c in COLUMNS)} FROM events "  # noqa: S608
            "WHERE member_path = ? AND source = ?", [member_path, EvtxParser.NAME])
        _, errors = db.execute("SELECT * FROM ingest_errors WHERE member_path = ?",
                               [member_path])
        _, account = db.execute(
            "SELECT records_seen, records_loaded, records_rejected FROM artifacts "
            "WHERE member_path = ?", [member_path])
    return events, errors, account[0]


def ts_in_table_order(case: Case) -> list:
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        return [r[0] for r in db.execute("SELECT ts FROM events")[1]]


def assert_member_matches(case: Case, host: Path, rel: str, bundle_id: str) -> None:
    expected_events, expected_errors = expected_rows(case, host, rel, bundle_id)
    events, errors, account = db_rows(case, "/" + rel)
    key = lambda row: (row[COLUMNS.index("record_ref")], str(row))  # noqa: E731
    assert sorted(map(normal, events), key=key) == sorted(map(normal, expected_events), key=key)
    assert sorted(errors) == sorted(expected_errors)
    seen = len(expected_events) + len(expected_errors)
    assert account == (seen, len(expected_events), len(expected_errors))


@pytest.fixture
def evtx_host(tmp_path: Path) -> Path:
    host = tmp_path / "host"
    for name in FILES:
        target = host / "logs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(upstream_path(f"evtx/{name}"), target)
    return host


@pytest.fixture
def sorts(monkeypatch) -> list[int]:
    """Counts CaseDatabase.sort_events calls."""
    calls: list[int] = []
    original = CaseDatabase.sort_events

    def counted(self):  # noqa: ANN001, ANN202
        calls.append(1)
        return original(self)

    monkeypatch.setattr(CaseDatabase, "sort_events", counted)
    return calls


def test_evtx_members_load_exactly_what_the_python_path_gives(tmp_path, keyring, evtx_host,
                                                              sorts):
    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    collect(case, keyring.alice.key, evtx_host, paths=("logs/**",))
    report = ingest_case(case, keyring.alice.key, workers=2)
    (bundle_id,) = report.bundles
    for name in FILES:
        assert_member_matches(case, evtx_host, f"logs/{name}", bundle_id)
    # rows went in in time order (the table was empty), so no sort was needed
    times = ts_in_table_order(case)
    assert times == sorted(times) and len(times) == report.events_added
    assert sorts == []
    # the database holds no pending row, and the ingests row counts what is there
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        assert db.execute("SELECT count(*) FROM events WHERE ts IS NULL")[1] == [(0,)]
        assert db.execute("SELECT events, errors FROM ingests")[1] == [
            (db.count("events"), db.count("ingest_errors"))]


def test_a_second_bundle_is_sorted_into_the_first(tmp_path, keyring, evtx_host, sorts):
    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    collect(case, keyring.alice.key, evtx_host, paths=("logs/System2.evtx",))
    ingest_case(case, keyring.alice.key, workers=1)
    collect(case, keyring.alice.key, evtx_host, paths=("logs/new-user-security.evtx",))
    report = ingest_case(case, keyring.alice.key, workers=1)
    assert_member_matches(case, evtx_host, "logs/new-user-security.evtx", report.bundles[0])
    times = ts_in_table_order(case)
    assert times == sorted(times)
    assert sorts == [1]  # the first ingest went in in order, the second one was sorted in


def test_records_the_sql_hands_to_python_are_read_by_python(tmp_path, keyring, monkeypatch,
                                                            sorts, forked_workers):
    """Rejections, records left to Python and loaded ones, in one member, through the ingest.

    The member's bytes are a bare file header; the evtx pass is replaced by the synthetic
    records of test_evtx_sql, so the staged JSON is exactly theirs.
    """
    records = [EvtxJson(i, data) for i, (_, data, _) in enumerate(SYNTHETIC, 1)]

    def parse_deferred(self, member):  # noqa: ANN001, ANN202 - the patched evtx pass
        yield from records

    def parse(self, member):  # noqa: ANN001, ANN202 - what the Python path makes of them
        from sealtrail.analysis.parsers.evtx_windows import record_from_json

        for r in records:
            yield record_from_json(r.record_id, r.data)

    monkeypatch.setattr(EvtxParser, "parse_deferred", parse_deferred)
    monkeypatch.setattr(EvtxParser, "parse", parse)
    host = tmp_path / "host"
    write(host, "logs/synthetic.evtx", FILE_MAGIC_ONLY)
    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    collect(case, keyring.alice.key, host, paths=("logs/**",))
    report = ingest_case(case, keyring.alice.key, workers=1)
    assert_member_matches(case, host, "logs/synthetic.evtx", report.bundles[0])
    outcomes = {expected for _, _, expected in SYNTHETIC}
    assert outcomes == {evtx_sql.OK, evtx_sql.REJECTED, evtx_sql.PYTHON}
    # Python's events go in with the others, in the one ordered insert: no sort needed
    times = ts_in_table_order(case)
    assert times == sorted(times)
    assert sorts == []
