"""The SQL reading of EVTX records (parsers/evtx_sql.py) against the Python path, record by record.

The Python path is what the worker did before the SQL existed: ``record_from_json`` (orjson, then
``_to_event``) followed by the worker's checks and row conversion (``worker.item_rows``). For
every record of every upstream EVTX file, and for synthetic records made to hit each edge, the
SQL must give the same ``events`` row in every column (``attributes`` compared as parsed JSON:
its text is DuckDB's, not orjson's) or the same rejection reason. A record the SQL hands to
Python (outcome ``python``) is read by that same Python code in the ingest, so it is exact by
construction; the tests pin which records do, so that the SQL cannot pass by handing over
everything.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealtrail.analysis.arrow_rows import EVTX_JSON_SCHEMA, ParquetSink, arrow_schema
from sealtrail.analysis.parsers import evtx_sql
from sealtrail.analysis.parsers.evtx_windows import EvtxParser, record_from_json
from sealtrail.analysis.records import EvtxJson
from sealtrail.analysis.schema import EVENT_COLUMNS
from sealtrail.analysis.store import CaseDatabase, parquet_source
from sealtrail.analysis.worker import MemberTask, item_rows
from sealtrail.custody.canonical import parse_json
from tests.analysis.helpers import member_from_file
from tests.shared_data import shared_absent, upstream_dir

NAME, VERSION = EvtxParser.NAME, EvtxParser.VERSION
TASK = MemberTask(0, "bundle.stb", "bundle-1", "data/x.evtx", "ab" * 32, "/evidence/x.evtx", 0,
                  None, "host-1", (), "")
PROVENANCE = {"host": "'host-1'", "source": f"'{NAME}'", "bundle_id": "'bundle-1'",
              "member_path": "'/evidence/x.evtx'", "member_sha256": f"'{'ab' * 32}'",
              "parser_version": f"'{VERSION}'"}
COLUMNS = [name for name, _, _ in EVENT_COLUMNS]


def sql_outcomes(tmp_path: Path, records: list[tuple[int, str]]) -> list[dict]:
    """The compiled SELECT over ``records`` (record id, JSON text), in their order."""
    staged = tmp_path / f"staged-{len(list(tmp_path.iterdir()))}.parquet"
    sink = ParquetSink(staged, EVTX_JSON_SCHEMA, dictionary=False)
    for record_id, data in records:
        sink.add(EvtxJson(record_id, data))
    sink.close()
    # the member key is the row's place in the file, so rows come back in the records' order
    source = (f"(SELECT file_row_number AS member, record_id, data FROM "
              f"read_parquet('{staged.as_posix()}', file_row_number = true))")
    sql = evtx_sql.select_sql(source, PROVENANCE)
    with CaseDatabase(tmp_path / "parity.duckdb") as db:
        names, rows = db.execute(f"SELECT * FROM ({sql}) ORDER BY member")
    assert len(rows) == len(records)
    return [dict(zip(names, row, strict=True)) for row in rows]


def python_outcome(record_id: int, data: str) -> tuple[tuple | None, tuple | None]:
    return item_rows(record_from_json(record_id, data), TASK, NAME, VERSION)


def differences(sql: dict, record_id: int, data: str) -> list[str]:
    """How the SQL's row for one record differs from the Python path's ([] if it does not)."""
    event_row, error_row = python_outcome(record_id, data)
    if sql["outcome"] == evtx_sql.PYTHON:
        return []  # read by the Python path itself in the ingest
    if error_row is not None:
        if sql["outcome"] != evtx_sql.REJECTED or sql["reason"] != error_row[4]:
            return [f"record {record_id}: Python rejects ({error_row[4]!r}), SQL gives "
                    f"{sql['outcome']} ({sql['reason']!r})"]
        return []
    if sql["outcome"] != evtx_sql.OK:
        return [f"record {record_id}: Python loads it, SQL gives {sql['outcome']} "
                f"({sql['reason']!r})"]
    out = []
    for name, expected in zip(COLUMNS, event_row, strict=True):
        got = sql[name]
        if name == "attributes":
            expected, got = parse_json(expected), parse_json(got)
        if got != expected or type(got) is not type(expected):
            out.append(f"record {record_id}: {name} is {got!r}, Python gives {expected!r}")
    return out


# -- every upstream record -------------------------------------------------------------------


def _upstream_files() -> list[Path]:
    folder = upstream_dir() / "evtx"
    return sorted(folder.glob("*.evtx")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def upstream_records() -> list[tuple[str, int, str]]:
    """(file, record id, JSON text) of every record the evtx pass gives, as workers stage them."""
    files = _upstream_files()
    if not files:
        shared_absent(f"{upstream_dir() / 'evtx'} is absent (set SEALTRAIL_UPSTREAM)")
    out = []
    for path in files:
        for item in EvtxParser().parse_deferred(member_from_file(path)):
            if type(item) is EvtxJson:
                out.append((path.name, item.record_id, item.data))
    return out


def repeats_a_key(data: str) -> bool:
    """True if some JSON object in ``data`` has a key twice (json keeps them all here)."""
    repeated = []

    def pairs(items: list) -> dict:
        keys = [k for k, _ in items]
        repeated.append(len(keys) != len(set(keys)))
        return dict(items)

    json.loads(data, object_pairs_hook=pairs)
    return any(repeated)


def test_every_upstream_record_gives_the_python_row(upstream_records, tmp_path):
    results = sql_outcomes(tmp_path, [(rid, data) for _, rid, data in upstream_records])
    problems = []
    for (name, record_id, data), sql in zip(upstream_records, results, strict=True):
        problems += [f"{name} {p}" for p in differences(sql, record_id, data)]
    assert problems == []
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count(evtx_sql.OK) > 14_000
    assert outcomes.count(evtx_sql.REJECTED) == 1  # sample_with_a_bad_chunk_magic: no time
    # The SQL reads all of them itself but the 4648 events of Security_with_size_t, whose
    # EventData holds LogonGuid twice (as the evtx crate writes a repeated Data name).
    python = [(name, data) for (name, _, data), r in zip(upstream_records, results, strict=True)
              if r["outcome"] == evtx_sql.PYTHON]
    assert len(python) == 92
    assert all(name == "Security_with_size_t.evtx" and repeats_a_key(data)
               for name, data in python)
    assert sum(repeats_a_key(data) for _, _, data in upstream_records) == 92


def test_upstream_records_cover_the_rule_shapes(upstream_records, tmp_path):
    """What the upstream parity covers, so that a shrinking fixture set is noticed."""
    results = sql_outcomes(tmp_path, [(rid, data) for _, rid, data in upstream_records])
    types = {r["event_type"] for r in results if r["outcome"] == evtx_sql.OK}
    assert {"logon_success", "logon_failure", "logoff", "process_start", "service_installed",
            "service_state", "log_cleared", "shell_command", "account_created",
            "group_membership_changed", "network_connection", "other"} <= types
    assert any(r["attributes"] and '"UserData"' in r["attributes"] for r in results)
    assert any(r["event_id"] == 4103 and r["user"] for r in results)  # ContextInfo line


# -- synthetic records: each edge the Python path has ----------------------------------------

TIME = '"TimeCreated":{"#attributes":{"SystemTime":"2019-03-04T05:06:07.123456Z"}}'
SEC = '"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}}'


def record(system: str = "", body: str = "", *, time: str = TIME, event: str = "") -> str:
    parts = [p for p in (time, system) if p]
    inner = [f'"System":{{{",".join(parts)}}}'] + ([body] if body else []) + (
        [event] if event else [])
    return '{"Event":{' + ",".join(inner) + "}}"


def compact(value: object) -> str:
    """JSON as the evtx crate writes it: no spaces, non-ASCII as it is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def security(eid: object, data: dict | str, **kw: str) -> str:
    body = data if isinstance(data, str) else compact({"EventData": data})[1:-1]
    return record(f'{SEC},"EventID":{compact(eid)},"Channel":"Security",'
                  '"Computer":"WS1"', body, **kw)


LOGON = {"SubjectUserName": "-", "SubjectDomainName": "-", "TargetUserName": "alice",
         "TargetDomainName": "CORP", "TargetUserSid": "S-1-5-21-1", "LogonType": 3,
         "IpAddress": "10.0.0.5", "IpPort": "51000", "ProcessName": "-",
         "Status": "0xc000006d", "SubStatus": "0xc0000064"}
LONG = "word " * 80
SPACES = "\u3000a\u2003 \t b\u00a0\u2028c\u0085 "

# (label, JSON text, expected outcome)
SYNTHETIC: list[tuple[str, str, str]] = [
    # timestamps and the record's shape
    ("no TimeCreated", record('"EventID":1', time=""), "rejected"),
    ("no System", '{"Event":{"EventData":{}}}', "rejected"),
    ("Event is a list", '{"Event":[1,2]}', "rejected"),
    ("document is a list", "[1]", "rejected"),
    ("document is a string", '"x"', "rejected"),
    ("System is a string", '{"Event":{"System":"x"}}', "rejected"),
    ("TimeCreated null", record(time='"TimeCreated":{"#attributes":{"SystemTime":null}}'),
     "rejected"),
    ("TimeCreated int", record(time='"TimeCreated":{"#attributes":{"SystemTime":5}}'),
     "rejected"),
    ("TimeCreated empty", record(time='"TimeCreated":{"#attributes":{"SystemTime":""}}'),
     "rejected"),
    ("TimeCreated as text", record(time='"TimeCreated":"2019-03-04T05:06:07.123456Z"'),
     "rejected"),
    ("pre-1970", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                        '"1601-01-01T00:00:00.000000Z"}}'), "rejected"),
    ("1969", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                   '"1969-12-31T23:59:59.999999Z"}}'), "rejected"),
    ("epoch", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                    '"1970-01-01T00:00:00.000000Z"}}'), "ok"),
    ("9 fraction digits", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                                '"2021-11-19T16:52:33.833733999Z"}}'), "ok"),
    ("no fraction", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                          '"2021-11-19T16:52:33Z"}}'), "ok"),
    ("no such day", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                          '"2021-02-30T16:52:33.000000Z"}}'), "python"),
    ("offset", record(time='"TimeCreated":{"#attributes":{"SystemTime":'
                     '"2021-02-03T16:52:33+02:00"}}'), "python"),
    ("not a time", record(time='"TimeCreated":{"#attributes":{"SystemTime":"soon\'s"}}'),
     "python"),
    # System values
    ("provider int", record('"Provider":{"#attributes":{"Name":5}},"EventID":1'), "ok"),
    ("provider bool", record('"Provider":{"#attributes":{"Name":true}},"EventID":1'), "ok"),
    ("provider object", record('"Provider":{"#attributes":{"Name":{"a":1}}},"EventID":1'),
     "python"),
    ("provider list", record('"Provider":{"#attributes":{"Name":[1]}},"EventID":1'), "python"),
    ("provider float", record('"Provider":{"#attributes":{"Name":1.5}},"EventID":1'), "python"),
    ("provider not a dict", record('"Provider":"x","EventID":1'), "ok"),
    ("provider empty, channel shown", record('"Provider":{"#attributes":{"Name":""}},'
                                             '"EventID":9,"Channel":"Setup"'), "ok"),
    ("channel #text", record('"EventID":1,"Channel":{"#text":"Security"}'), "ok"),
    ("channel #text null", record('"EventID":1,"Channel":{"#text":null}'), "ok"),
    ("channel int", record('"EventID":1,"Channel":7'), "ok"),
    ("channel list", record('"EventID":1,"Channel":["a"]'), "python"),
    ("computer int", record('"EventID":1,"Computer":42'), "ok"),
    ("computer false", record('"EventID":1,"Computer":false'), "ok"),
    ("user id", record('"EventID":1,"Security":{"#attributes":{"UserID":"S-1-5-18"}}'), "ok"),
    ("user id empty", record('"EventID":1,"Security":{"#attributes":{"UserID":""}}'), "ok"),
    ("user id 0", record('"EventID":1,"Security":{"#attributes":{"UserID":0}}'), "ok"),
    ("user id int", record('"EventID":1,"Security":{"#attributes":{"UserID":7}}'), "ok"),
    ("user id dict", record('"EventID":1,"Security":{"#attributes":{"UserID":{"a":1}}}'),
     "python"),
    # EventID in every form
    ("eid object", security({"#attributes": {"Qualifiers": 16384}, "#text": 4624}, LOGON), "ok"),
    ("eid object text", security({"#text": "4624"}, LOGON), "ok"),
    ("eid string", security("4624", LOGON), "ok"),
    ("eid padded", security(" 4624 ", LOGON), "ok"),
    ("eid hex", security("0x1210", LOGON), "ok"),
    ("eid underscores", security("4_624", LOGON), "ok"),
    ("eid signed", security("+4624", LOGON), "ok"),
    ("eid list", security(["4624"], LOGON), "python"),
    ("eid list of two", security([4624, 1], LOGON), "python"),
    ("eid true", security(True, LOGON), "ok"),
    ("eid null", security(None, LOGON), "ok"),
    ("eid words", security("logon", LOGON), "ok"),
    ("eid out of INTEGER", security(2**40, LOGON), "rejected"),
    ("eid beyond 2**64 (orjson: a float)", security(2**70, LOGON), "python"),
    ("eid below -2**63 (orjson: a float)", security(-(2**63) - 1, LOGON), "python"),
    ("eid 2**64 - 1", security(2**64 - 1, LOGON), "rejected"),
    ("eid float", security(4624.0, LOGON), "python"),
    ("eid Arabic-Indic digits", security("\u0664\u0666", LOGON), "python"),
    # EventData values
    ("logon", security(4624, LOGON), "ok"),
    ("logon failure", security(4625, LOGON), "ok"),
    ("dash and not set", security(4624, LOGON | {"IpAddress": "-", "TargetDomainName": "%%1793",
                                                 "IpPort": "-"}), "ok"),
    ("padded values", security(4624, LOGON | {"TargetUserName": "  bob\t",
                                              "TargetDomainName": " - ", "IpAddress": SPACES}),
     "ok"),
    ("whitespace only", security(4624, LOGON | {"TargetUserName": " \n ",
                                                "IpAddress": "\u3000"}), "ok"),
    ("logon type text", security(4624, LOGON | {"LogonType": " 10 "}), "ok"),
    ("logon type hex", security(4624, LOGON | {"LogonType": "0xA"}), "ok"),
    ("logon type bool", security(4624, LOGON | {"LogonType": True}), "ok"),
    ("logon type out of INTEGER", security(4624, LOGON | {"LogonType": 2**33}), "rejected"),
    ("logon type big text", security(4624, LOGON | {"LogonType": "9" * 40}), "python"),
    ("ports", security(4624, LOGON | {"IpPort": 0}), "ok"),
    ("port too big", security(4624, LOGON | {"IpPort": "65536"}), "ok"),
    ("port hex", security(4624, LOGON | {"IpPort": "0x1BB"}), "ok"),
    ("port list", security(4624, LOGON | {"IpPort": ["443"]}), "ok"),
    ("no domain", security(4624, {"TargetUserName": "alice", "LogonType": 2}), "ok"),
    ("domain only", security(4624, {"TargetDomainName": "CORP", "LogonType": 2}), "ok"),
    ("list value", security(4624, LOGON | {"TargetUserName": ["a", " b ", "-", 3, True, None]}),
     "ok"),
    ("#text value", security(4624, LOGON | {"TargetUserName": {"#text": " carol "}}), "ok"),
    ("#text list", security(4624, LOGON | {"TargetUserName": {"#text": ["x", "y"]}}), "ok"),
    ("object without #text", security(4624, LOGON | {"TargetUserName": {"a": "b"}}), "ok"),
    ("nested list", security(4624, LOGON | {"TargetUserName": [["x"]]}), "python"),
    ("#text object", security(4624, LOGON | {"TargetUserName": {"#text": {"a": 1}}}), "python"),
    ("dict in Status (message)", security(4625, LOGON | {"Status": {"a": 1}}), "ok"),
    ("list in Status (message)", security(4625, LOGON | {"Status": [1, 2]}), "ok"),
    ("column name as data key", security(4624, LOGON | {"IpAddress": "-", "src_ip": "x"}),
     "ok"),
    ("column name as data key, nested", security(4624, LOGON | {"IpAddress": "-",
                                                                 "src_ip": [1]}), "ok"),
    ("int beyond 2**53", security(4624, LOGON | {"Big": 2**60, "Neg": -(2**60),
                                                 "Edge": 2**53 - 1, "Over": 2**53}), "ok"),
    ("int beyond 2**64", security(4624, LOGON | {"Huge": 2**70}), "python"),
    ("int below -2**63", security(4624, LOGON | {"Low": -(2**63) - 1}), "python"),
    ("ints at the 64-bit edges", security(4624, LOGON | {"Hi": 2**64 - 1, "Lo": -(2**63)}),
     "ok"),
    ("ints in lists", security(4624, LOGON | {"L": [2**60, 1, "2"]}), "ok"),
    ("float value", security(4624, LOGON | {"F": 1.5}), "python"),
    ("float in a string only", security(4624, LOGON | {"F": "v1.5 at 12:30.5"}), "ok"),
    ("escapes and unicode", security(4624, LOGON | {
        "TargetUserName": 'a"b\\c\u0000\u00e9\U0001f600', "k\"ey": "v"}), "ok"),
    ("strings saying inf and NaN", security(4624, LOGON | {"X": "info NaN inf"}), "ok"),
    ("NaN in EventData", security(4624, LOGON).replace('"LogonType":3', '"LogonType":NaN'),
     "python"),
    ("inf outside the fields read", security(4624, LOGON).replace(
        '"Computer":"WS1"', '"Computer":"WS1","Version":inf'), "python"),
    ("too deep for orjson", security(4624, LOGON).replace('"ProcessName":"-"',
                                                         '"P":' + "[" * 1100 + "]" * 1100),
     "python"),
    ("many brackets in a string", security(4624, LOGON | {"P": "[" * 2100}), "python"),
    ("not JSON", '{"Event":', "python"),
    # a key twice in the data: Python keeps the last value at the first key's place
    ("repeated rule key", security(4624, "").replace(
        '"Computer":"WS1"}', '"Computer":"WS1"},"EventData":{"TargetUserName":"first",'
        '"LogonType":3,"TargetUserName":"last"}'), "python"),
    ("repeated other key", security(4624, "").replace(
        '"Computer":"WS1"}', '"Computer":"WS1"},"EventData":{"TargetUserName":"u",'
        '"X":"1","X":"1"}'), "python"),
    ("repeated key, unmapped", record('"EventID":99,"Channel":"C"',
                                      '"EventData":{"a":"1","b":"2","a":"3"}'), "python"),
    ("repeated UserData child", record('"EventID":5,"Channel":"X"',
                                       '"UserData":{"A":{"k":"v"},"A":{"k":"w"}}'), "python"),
    # rules with providers, UserData, other readers
    ("service install", record('"Provider":{"#attributes":{"Name":"Service Control Manager"}},'
                               '"EventID":7045,"Channel":"System"',
                               '"EventData":{"ServiceName":"svc","ImagePath":"",'
                               '"ImageFileName":"-","ServiceFileName":"c:\\\\x.sys"}'), "ok"),
    ("service install, other provider", record(
        '"Provider":{"#attributes":{"Name":"Other"}},"EventID":7045,"Channel":"System"',
        '"EventData":{"ServiceName":"svc"}'), "ok"),
    ("service path falsy", record('"Provider":{"#attributes":{"Name":"Service Control Manager"}},'
                                  '"EventID":7045,"Channel":"System"',
                                  '"EventData":{"ImagePath":0,"ImageFileName":false,'
                                  '"ServiceFileName":0}'), "ok"),
    ("service path zero text", record(
        '"Provider":{"#attributes":{"Name":"Service Control Manager"}},"EventID":7045,'
        '"Channel":"System"', '"EventData":{"ImagePath":"0","ServiceFileName":"y"}'), "ok"),
    ("service path false last", record(
        '"Provider":{"#attributes":{"Name":"Service Control Manager"}},"EventID":7045,'
        '"Channel":"System"', '"EventData":{"ServiceFileName":false}'), "ok"),
    ("service state", record('"Provider":{"#attributes":{"Name":"Service Control Manager"}},'
                             '"EventID":{"#attributes":{"Qualifiers":16384},"#text":7036},'
                             '"Channel":"System"',
                             '"EventData":{"param1":"Windows Update","param2":"running"}'), "ok"),
    ("log cleared, UserData", record(
        '"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"EventID":104,'
        '"Channel":"System"', '"UserData":{"LogFileCleared":{"SubjectUserName":"bob",'
        '"SubjectDomainName":"DOM","Channel":"Application"}}'), "ok"),
    ("UserData with #text child", record('"EventID":104,"Channel":"System"',
                                         '"UserData":{"X":{"#text":"t"}}'), "ok"),
    ("UserData two children", record('"EventID":5,"Channel":"X"',
                                     '"UserData":{"A":{"k":"v"},"B":{"k":"w"}}'), "ok"),
    ("EventData null, UserData used", record('"EventID":5,"Channel":"X"',
                                             '"EventData":null,"UserData":{"A":{"k":"v"}}'),
     "ok"),
    ("EventData string", record('"EventID":5,"Channel":"X"', '"EventData":"text"'), "ok"),
    ("EventData number", record('"EventID":5,"Channel":"X"', '"EventData":12'), "ok"),
    ("EventData big number", record('"EventID":5,"Channel":"X"', f'"EventData":{2**60}'), "ok"),
    ("EventData list", record('"EventID":5,"Channel":"X"', '"EventData":["a",1]'), "ok"),
    ("account rename", security(4781, {"OldTargetUserName": "old", "NewTargetUserName": "new",
                                       "TargetDomainName": "D", "SubjectUserName": "adm",
                                       "SubjectDomainName": "D"}), "ok"),
    ("account rename, new name null", security(4781, {"OldTargetUserName": "old",
                                                      "NewTargetUserName": None,
                                                      "TargetUserName": "t"}), "ok"),
    ("group member", security(4732, {"MemberName": "-", "MemberSid": "S-1-5-21-9",
                                     "TargetUserName": "Administrators",
                                     "TargetDomainName": "Builtin"}), "ok"),
    ("credential validation", security(4776, {"TargetUserName": "bob", "Workstation": "W",
                                              "Status": "0x0"}), "ok"),
    ("explicit credentials", security(4648, LOGON | {"TargetServerName": "srv"}), "ok"),
    ("boot", security(4608, {}), "ok"),
    ("long command line", security(4688, {"NewProcessName": "c.exe", "CommandLine": LONG,
                                          "SubjectUserName": "u"}), "ok"),
    ("collapsed message", security(4688, {"NewProcessName": "c.exe",
                                          "CommandLine": "a\tb  c\r\nd" + SPACES + "e"}), "ok"),
    ("sysmon network", record('"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational"',
                              '"EventData":{"Image":"x.exe","SourceIp":"1.2.3.4",'
                              '"SourcePort":"4444","DestinationIp":"5.6.7.8",'
                              '"DestinationPort":443,"User":"NT AUTHORITY\\\\SYSTEM"}'), "ok"),
    ("script block", record('"EventID":4104,"Channel":"Microsoft-Windows-PowerShell/Operational"',
                            '"EventData":{"ScriptBlockText":"' + "x " * 200 + '","Path":""}'),
     "ok"),
    ("module logging", record(
        '"EventID":4103,"Channel":"Microsoft-Windows-PowerShell/Operational"',
        '"EventData":{"Payload":"CommandInvocation(Get-Item)","ContextInfo":"        Severity = '
        'Informational\\r\\n        Host Application = powershell.exe -nop\\r\\n  User = '
        'DOM\\\\eve\\r\\n        User = later\\n"}'), "ok"),
    ("module logging, odd lines", record(
        '"EventID":4103,"Channel":"Microsoft-Windows-PowerShell/Operational"',
        '"EventData":{"Payload":"p","ContextInfo":"User =\\u2028Host Application= a = b\\u000b'
        'x"}'), "ok"),
    ("module logging, no context", record(
        '"EventID":4103,"Channel":"Microsoft-Windows-PowerShell/Operational"',
        '"EventData":{"Payload":"p","ContextInfo":"-"}'), "ok"),
    # the generic summary
    ("unmapped", record('"Provider":{"#attributes":{"Name":"P"}},"EventID":99,"Channel":"C"',
                        '"EventData":{"#hidden":"h","a":{"x":1},"b":[1],"c":"-","d":" ",'
                        '"e":"one","f":2,"g":true,"h":"four","i":"five"}'), "ok"),
    ("unmapped, parts late", record(
        '"EventID":99,"Channel":"C"', '"EventData":{' + ",".join(
            f'"k{i}":"-"' for i in range(12)) + ',"late1":"x","late2":"y"}'), "ok"),
    ("unmapped, nested and late", record(
        '"EventID":99,"Channel":"C"', '"EventData":{' + ",".join(
            f'"k{i}":[{i}]' for i in range(10)) + ',"late":" z "}'), "ok"),
    ("unmapped, no event id", record('"Channel":"C"', '"EventData":{"a":"b"}'), "ok"),
    ("unmapped, nothing", record(), "ok"),
    ("unmapped, long", record('"EventID":99,"Channel":"C"', '"EventData":{"a":"' + LONG + '"}'),
     "ok"),
]


def test_synthetic_records_give_the_python_row(tmp_path):
    records = [(i, data) for i, (_, data, _) in enumerate(SYNTHETIC, 1)]
    results = sql_outcomes(tmp_path, records)
    problems = []
    for (label, data, expected), sql, (record_id, _) in zip(SYNTHETIC, results, records,
                                                          strict=True):
        problems += [f"{label}: {p}" for p in differences(sql, record_id, data)]
        if sql["outcome"] != expected:
            problems.append(f"{label}: outcome {sql['outcome']}, expected {expected}")
        if sql["outcome"] == evtx_sql.PYTHON:
            assert sql["data"] == data
        else:
            assert sql["data"] is None
    assert problems == []


def test_the_python_outcome_is_what_the_ingest_then_reads(tmp_path):
    """Records sent to Python are not lost: the Python path reads them all, some as events."""
    python = [(label, data) for label, data, expected in SYNTHETIC if expected == "python"]
    outcomes = [python_outcome(i, data) for i, (_, data) in enumerate(python)]
    assert any(event is not None for event, _ in outcomes)
    assert any(error is not None and "not valid JSON" in error[4] for _, error in outcomes)
    assert any(error is not None and "is not a timestamp" in error[4] for _, error in outcomes)


def test_the_ingest_takes_events_rejections_and_python_records_apart(tmp_path):
    """staged_sql over the workers' files, kept in a table, and what the ingest takes from it."""
    records = [(1, security(4624, LOGON)), (2, record(time="")), (3, '{"Event":')]
    staged = tmp_path / "staged.parquet"
    sink = ParquetSink(staged, EVTX_JSON_SCHEMA, dictionary=False)
    for rid, data in records:
        sink.add(EvtxJson(rid, data))
    sink.close()
    members = tmp_path / "members.parquet"
    sink = ParquetSink(members, arrow_schema(evtx_sql.MEMBER_COLUMNS))
    sink.add((staged.as_posix(), 7, "host-1", NAME, "bundle-1", "/evidence/x.evtx", "ab" * 32,
              VERSION))
    sink.close()
    with CaseDatabase(tmp_path / "take.duckdb") as db:
        db.create_temp_table("rows", evtx_sql.staged_sql(
            parquet_source([staged], filename=True), parquet_source([members])))
        _, events = db.execute(evtx_sql.events_sql("rows"))
        _, rejections = db.execute(evtx_sql.rejections_sql("rows"))
        _, counts = db.execute(evtx_sql.counts_sql("rows"))
        _, python = db.execute(evtx_sql.for_python_sql("rows"))
    assert [dict(zip(COLUMNS, e, strict=True))["record_ref"] for e in events] == ["record:1"]
    event = dict(zip(COLUMNS, events[0], strict=True))
    assert (event["host"], event["bundle_id"], event["member_path"], event["parser_version"]) == (
        "host-1", "bundle-1", "/evidence/x.evtx", VERSION)
    assert rejections == [("bundle-1", "/evidence/x.evtx", "ab" * 32, "record:2",
                           "evtx: record has no TimeCreated/@SystemTime", NAME)]
    assert sorted(counts) == [(7, evtx_sql.PYTHON, 1), (7, evtx_sql.REJECTED, 1)]
    assert python == [(7, 3, '{"Event":')]


def test_a_key_repeated_outside_the_data_is_the_one_deliberate_difference(tmp_path):
    """Two EventID elements in System (only a crafted log has them): the SQL reads the first
    and Python the last. Finding repeated keys outside EventData/UserData would cost a second
    parse of every record (see evtx_sql's docstring); this pins the difference, so that a
    change to it is seen."""
    data = security(4624, LOGON).replace('"EventID":4624', '"EventID":4624,"EventID":4625')
    (sql,) = sql_outcomes(tmp_path, [(1, data)])
    event_row, _ = python_outcome(1, data)
    assert (sql["outcome"], sql["event_id"], sql["event_type"]) == ("ok", 4624, "logon_success")
    assert (event_row[5], event_row[4]) == (4625, "logon_failure")
