"""Hostile names and manifests through the commands: escaped output, problems not crashes."""

from __future__ import annotations

import base64
import json
import logging
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sealtrail.analysis.output import render
from sealtrail.cli.main import PrintableFormatter, cli
from sealtrail.custody.bundle_format import MANIFEST_MEMBER
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.case import Case
from sealtrail.terminal import printable
from tests.conftest import collect, make_linux_host, write
from tests.custody.tamper import edit_manifest, read_envelope, rewrite
from tests.test_terminal import RAW_CONTROL, unescape

HOSTILE = "evil\nOK forged line\x1b[2K\r\u202eexe.txt\\x41"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: object):
    # color=True: CliRunner would otherwise strip ANSI sequences a real terminal receives.
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=True, color=True)


def assert_no_raw_control(*texts: str) -> None:
    for text in texts:
        found = RAW_CONTROL.search(text)
        assert found is None, f"raw {found.group()!r} reached the terminal: {text!r}"


@pytest.fixture
def hostile_case(tmp_path, keyring):
    """A case whose one collection holds a file named like a forged listing."""
    host = make_linux_host(tmp_path / "host")
    write(host, f"srv/data/{HOSTILE}", b"payload")
    case = Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)
    result = collect(case, keyring.alice.key, host, paths=("srv/data/**",))
    return case, Path(result.bundle_path), keyring


def test_bundle_show_lists_a_hostile_file_name_on_one_escaped_line(hostile_case, runner):
    _, bundle, keyring = hostile_case
    shown = invoke(runner, "bundle", "show", bundle, "--trust", keyring.alice.public)
    assert shown.exit_code == 0, shown.output
    assert_no_raw_control(shown.stdout, shown.stderr)
    manifest = json.loads(invoke(runner, "bundle", "show", bundle, "--json").stdout)
    members, entries = manifest["members"], manifest.get("entries", [])
    lines = shown.stdout.splitlines()
    assert len(lines) == 3 + len(members) + len(entries) + 1  # header, listing, outcomes
    (line,) = [x for x in lines if "srv/data/evil" in x]
    assert line.endswith("/srv/data/" + printable(HOSTILE))
    assert unescape(line.split("  ")[-1]).endswith(HOSTILE)


def test_verify_problem_naming_a_hostile_member_is_one_escaped_line(hostile_case, runner):
    case, bundle, keyring = hostile_case

    def add_record(manifest):
        manifest["members"].append({**manifest["members"][0], "name": f"data/{HOSTILE}"})

    edit_manifest(bundle, add_record, resign_with=keyring.alice.key)
    for target in (case.root, bundle):
        result = invoke(runner, "verify", target, "--trust", keyring.alice.public)
        assert result.exit_code == 1
        assert_no_raw_control(result.stdout, result.stderr)
        problems = [x for x in result.stdout.splitlines() if x.startswith("problem: ")]
        assert f"member data/{printable(HOSTILE)}: listed in the manifest, absent" in "".join(
            problems)
        assert not any(x.startswith("OK") for x in result.stdout.splitlines())


def test_error_line_escapes_the_message(tmp_path, runner):
    missing = tmp_path / "no\nError: forged\x1b[2K"
    result = invoke(runner, "ledger", "show", missing)
    assert result.exit_code == 2
    assert_no_raw_control(result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1
    assert printable(missing) in result.stderr


# --- malformed unsigned manifests: a problem, not a crash ------------------------------------


def set_payload(bundle: Path, payload: bytes) -> None:
    envelope = read_envelope(bundle)
    envelope["payload"] = base64.b64encode(payload).decode()
    rewrite(bundle, replace={MANIFEST_MEMBER: canonical_json(envelope)})  # a valid envelope


def _canonical(edit):
    def apply(bundle: Path) -> None:
        edit_manifest(bundle, edit)
    return apply


def _member(**fields):
    return _canonical(lambda m: m["members"][0].update(fields))


HOSTILE_MANIFESTS = {
    "not canonical JSON": (lambda b: set_payload(b, b'{"members": [] }'), "not in canonical"),
    "not JSON": (lambda b: set_payload(b, b"\xff{"), "not valid JSON"),
    "a list": (lambda b: set_payload(b, b"[]"), "not a sealtrail bundle manifest"),
    "members not a list": (_canonical(lambda m: m.update(members={"a": 1})), "member list"),
    "member not an object": (_canonical(lambda m: m["members"].insert(0, "x")), "members[0]"),
    "size a string": (_member(size="12"), "members[0]"),
    "sha256 missing": (_canonical(lambda m: m["members"][0].pop("sha256")), "members[0]"),
    "outcome missing": (_canonical(lambda m: m["members"][0].pop("outcome")), "members[0]"),
    "source not an object": (_member(source="x"), "members[0]"),
    "collection a string": (_canonical(lambda m: m.update(collection="x")), "collection"),
    "entries an object": (_canonical(lambda m: m.update(entries={})), "entries"),
    "entry not an object": (_canonical(lambda m: m.update(entries=[1])), "entries[0]"),
    "totals a list": (_canonical(lambda m: m.update(totals=[])), "totals"),
    "outcomes a list": (_canonical(lambda m: m["totals"].update(outcomes=[])), "outcomes"),
    "type missing": (_canonical(lambda m: m.pop("type")), "not a sealtrail bundle manifest"),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_MANIFESTS))
@pytest.mark.parametrize("command", ["show", "extract"])
def test_malformed_unsigned_manifest_is_a_problem_not_a_crash(sealed_case, runner, attack,
                                                              command, tmp_path):
    damage, reason = HOSTILE_MANIFESTS[attack]
    damage(sealed_case.bundle)
    args = ["bundle", command, sealed_case.bundle]
    if command == "extract":
        args.append(tmp_path / "out")
    result = invoke(runner, *args)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: bundle {sealed_case.bundle.name} manifest")
    assert reason in line
    assert "internal error" not in line
    assert not (tmp_path / "out").exists()


def test_ledger_show_keeps_one_line_per_entry_with_a_hostile_note(sealed_case, runner):
    key = sealed_case.keyring.alice.private
    recorded = invoke(runner, "ledger", "record", sealed_case.case.root, "--key", key,
                      "--action", "note", "--note", HOSTILE)
    assert recorded.exit_code == 0, recorded.output
    shown = invoke(runner, "ledger", "show", sealed_case.case.root)
    assert shown.exit_code == 0
    assert_no_raw_control(shown.stdout, shown.stderr)
    lines = shown.stdout.splitlines()
    assert len(lines) == len(sealed_case.case.ledger().entries())
    assert lines[-1].endswith(f"note={printable(HOSTILE)}")


def test_query_table_escapes_cells_and_column_names():
    text = render("table", [f"c{HOSTILE}"], [(HOSTILE,), (None,)])
    assert_no_raw_control(text)
    assert len(text.splitlines()) == 2 + 2 + 1  # header, rule, two rows, row count
    assert printable(HOSTILE) in text


def test_log_lines_escape_the_message_but_keep_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "saved to %s",
                                   (HOSTILE,), sys.exc_info())
    text = PrintableFormatter("%(levelname)s: %(message)s").format(record)
    first, *traceback = text.split("\n")
    assert first == f"WARNING: saved to {printable(HOSTILE)}"
    assert traceback[0] == "Traceback (most recent call last):"


@pytest.mark.parametrize("command", ["show", "extract"])
def test_non_canonical_envelope_is_a_problem_naming_the_bundle(sealed_case, runner, command,
                                                               tmp_path):
    envelope = read_envelope(sealed_case.bundle)
    rewrite(sealed_case.bundle, replace={MANIFEST_MEMBER: json.dumps(envelope).encode()})
    args = ["bundle", command, sealed_case.bundle]
    if command == "extract":
        args.append(tmp_path / "out")
    result = invoke(runner, *args)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: bundle {sealed_case.bundle.name}: signature envelope is not "
                           "canonical JSON")
    assert not (tmp_path / "out").exists()
