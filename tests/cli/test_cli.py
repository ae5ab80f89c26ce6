"""The command line: exit codes, exact error lines, JSON output, the whole flow."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sealtrail.cli.main import cli
from tests.conftest import make_linux_host
from tests.custody.tamper import flip_byte, rewrite


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def keys(tmp_path, run) -> Path:
    """A folder with alice's and bob's key pairs, as `keys generate` writes them."""
    for name in ("alice", "bob"):
        assert run("keys", "generate", "--name", name, "--out", tmp_path / "keys").exit_code == 0
    return tmp_path / "keys"


@pytest.fixture
def case_of_alice(tmp_path, run, keys) -> Path:
    case = tmp_path / "case"
    result = run("case", "init", case, "--title", "t", "--examiner", "Alice",
                 "--key", keys / "alice.key")
    assert result.exit_code == 0, result.output
    return case


@pytest.fixture
def flow(tmp_path, run):
    keys = tmp_path / "keys"
    assert run("keys", "generate", "--name", "alice", "--out", keys).exit_code == 0
    host = make_linux_host(tmp_path / "host")
    case = tmp_path / "case"
    result = run("case", "init", case, "--title", "web01 breach", "--examiner", "Alice",
                 "--key", keys / "alice.key", "--authority", "INC-42")
    assert result.exit_code == 0, result.output
    result = run("collect", case, "--source", host, "--key", keys / "alice.key",
                 "--path", "srv/data/**", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    return {"keys": keys, "case": case, "host": host, "summary": summary, "tmp": tmp_path}


def test_keys_generate_writes_0600_private_key_and_prints_the_id(tmp_path, run):
    result = run("keys", "generate", "--name", "bob", "--out", tmp_path)
    assert result.exit_code == 0
    assert (tmp_path / "bob.key").stat().st_mode & 0o777 == 0o600
    shown = run("keys", "show", tmp_path / "bob.pub")
    key_id = shown.output.split("key id:")[1].split()[0]
    assert key_id in result.output
    assert len(key_id) == 16
    again = run("keys", "generate", "--name", "bob", "--out", tmp_path)
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output


def test_collect_json_summary(flow):
    summary = flow["summary"]
    assert summary["members"] >= 8
    assert summary["outcomes"]["collected"] == summary["members"]
    assert Path(summary["bundle"]).exists()
    assert len(summary["manifest_sha256"]) == 64


def test_verify_ok_then_tampered_exits_1_naming_bundle_and_member(flow, run):
    ok = run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("OK: ")
    name = flip_byte(Path(flow["summary"]["bundle"]), "var/log/auth.log")
    bad = run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub")
    assert bad.exit_code == 1
    problem_lines = [line for line in bad.output.splitlines() if line.startswith("problem:")]
    assert len(problem_lines) == 1
    bundle_id = flow["summary"]["bundle_id"]
    assert problem_lines[0].startswith(
        f"problem: bundle {bundle_id}.stb member {name}: SHA-256 differs from the manifest"
    )
    as_json = json.loads(run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub",
                             "--json").output)
    assert as_json["ok"] is False
    assert as_json["problems"][0]["kind"] == "HashMismatch"
    assert set(as_json) == {"ok", "problems", "checked", "notices", "target"}


def test_verify_single_bundle_needs_trust(flow, run):
    bundle = flow["summary"]["bundle"]
    result = run("verify", bundle)
    assert result.exit_code == 2
    assert result.output.strip() == "Error: verifying a bundle on its own needs --trust PUBFILE"
    ok = run("verify", bundle, "--trust", flow["keys"] / "alice.pub")
    assert ok.exit_code == 0, ok.output


def test_verify_single_bundle_with_a_checkpoint_is_a_usage_error(flow, run):
    """A checkpoint covers a case's ledger; ignoring it and printing OK would be a false OK."""
    checkpoint = flow["tmp"] / "counsel.txt"
    checkpoint.write_text("sealtrail case\n1\nAAAA\n")
    result = run("verify", flow["summary"]["bundle"], "--trust", flow["keys"] / "alice.pub",
                 "--checkpoint", checkpoint)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --checkpoint applies to a case folder, not to a single bundle"
    )


def test_verify_bundle_with_bytes_prepended_exits_1_naming_the_bundle(flow, run):
    bundle = Path(flow["summary"]["bundle"])
    bundle.write_bytes(b"JUNK" + bundle.read_bytes())
    result = run("verify", bundle, "--trust", flow["keys"] / "alice.pub")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"problem: bundle {bundle.name}: central directory does not end "
                               "where the end records begin")
    assert lines[-1].startswith(f"FAILED (1 problems): {bundle}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage", "not a sealtrail key file (not JSON)"),
        (b'{"type": "sealtrail.ed25519.private", "version": 1, "name": "a", "seed": "AAAA",'
         b' "public_key": "AAAA"}', "corrupt: seed is not 32 bytes of base64"),
    ],
)
def test_corrupt_key_file_is_one_line_exit_2(flow, run, content, message):
    bad = flow["tmp"] / "bad.key"
    bad.write_bytes(content)
    result = run("ledger", "record", flow["case"], "--key", bad, "--action", "stored")
    assert result.exit_code == 2
    assert result.output == f"Error: key file {bad}: {message}\n"


def test_public_key_given_as_signing_key(flow, run):
    pub = flow["keys"] / "alice.pub"
    result = run("ledger", "record", flow["case"], "--key", pub, "--action", "stored")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: key file {pub}: is a public key; a private key (.key) is needed to sign\n"
    )


def test_keys_generate_creates_its_folder_0700(keys):
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700


def test_a_fifo_given_as_key_is_refused_at_once(tmp_path, run):
    fifo = tmp_path / "alice.key"
    os.mkfifo(fifo)

    def unblock() -> None:  # a reader stuck waiting for a writer (the bug) gets EOF instead
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody is reading: nothing hangs

    timer = threading.Timer(5.0, unblock)
    timer.start()
    started = time.monotonic()
    try:
        result = run("case", "init", tmp_path / "case", "--title", "t", "--examiner", "A",
                     "--key", fifo)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5.0
    assert result.exit_code == 2
    assert result.output == f"Error: key file {fifo}: is a named pipe (FIFO), not a key file\n"
    assert not (tmp_path / "case").exists()


def test_a_private_key_others_can_read_works_with_one_warning_line(tmp_path, run, keys):
    key = keys / "alice.key"
    key.chmod(0o644)
    result = run("case", "init", tmp_path / "case", "--title", "t", "--examiner", "A",
                 "--key", key)
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"warning: private key file {key} is open to group or others "
                             f"(mode 0644); make it private with: chmod 600 {key}\n")


@pytest.mark.parametrize("command", [
    ("verify", "{case}", "--trust", "{key}"),
    ("case", "trust", "{case}", "{key}", "--key", "{alice}"),
    ("case", "init", "{tmp}/other", "--title", "t", "--examiner", "B", "--key", "{alice}",
     "--trust", "{key}"),
    ("ingest", "{case}", "--key", "{alice}", "--trust", "{key}"),
])
def test_a_private_key_where_a_public_key_belongs_is_a_usage_error(tmp_path, run, keys,
                                                                   case_of_alice, command):
    bob = keys / "bob.key"
    before = (case_of_alice / "ledger.jsonl").read_bytes()
    result = run(*(arg.format(case=case_of_alice, key=bob, alice=keys / "alice.key",
                              tmp=tmp_path) for arg in command))
    assert result.exit_code == 2
    assert result.output == f"Error: key file {bob}: is a private key; give its public key " \
                            f"(.pub) here\n"
    assert (case_of_alice / "ledger.jsonl").read_bytes() == before
    assert not (tmp_path / "other").exists()


def test_keys_show_says_a_private_key_is_private_and_shows_its_public_key_id(run, keys):
    public = run("keys", "show", keys / "alice.pub")
    private = run("keys", "show", keys / "alice.key")
    assert public.exit_code == private.exit_code == 0
    assert "kind:       public key\n" in public.output
    assert "kind:       private key (keep it secret; its public half is shown)\n" in private.output
    assert private.output.replace("kind:       private key (keep it secret; its public half "
                                  "is shown)", "kind:       public key") == public.output
    assert "seed" not in private.output


def test_untrusted_signer_is_refused_before_writing(flow, run):
    assert run("keys", "generate", "--name", "mallory", "--out", flow["keys"]).exit_code == 0
    before = (flow["case"] / "ledger.jsonl").read_bytes()
    result = run("collect", flow["case"], "--source", flow["host"],
                 "--key", flow["keys"] / "mallory.key")
    assert result.exit_code == 2
    assert "is not trusted in case" in result.output
    assert (flow["case"] / "ledger.jsonl").read_bytes() == before


def test_key_from_environment_variable(flow, run):
    result = run("ledger", "record", flow["case"], "--action", "stored", "--storage", "vault 3",
                 env={"SEALTRAIL_KEY": str(flow["keys"] / "alice.key")})
    assert result.exit_code == 0, result.output
    shown = run("ledger", "show", flow["case"], "--json")
    last = json.loads(shown.output.splitlines()[-1])
    assert last["action"] == "stored"
    assert last["custody"] == {"storage": "vault 3"}


def test_ledger_record_show_checkpoint_prove(flow, run):
    key = flow["keys"] / "alice.key"
    result = run("ledger", "record", flow["case"], "--key", key, "--action", "transferred",
                 "--to", "Bob Counsel", "--method", "hand delivery", "--seal", "S-1")
    assert result.exit_code == 0
    out = flow["tmp"] / "counsel.txt"
    cp = run("ledger", "checkpoint", flow["case"], "--key", key, "--out", out)
    assert cp.exit_code == 0
    text = out.read_text()
    assert text.startswith("sealtrail.case/")
    assert "\n\n\u2014 alice " in text
    run("ledger", "record", flow["case"], "--key", key, "--action", "examined")
    proved = run("ledger", "prove", flow["case"], "--checkpoint", out,
                 "--trust", flow["keys"] / "alice.pub")
    assert proved.exit_code == 0, proved.output
    assert "ledger (6 entries) extends the checkpoint (4 entries)" in proved.output
    shown = run("ledger", "show", flow["case"])
    assert "transferred" in shown.output
    assert "to=Bob Counsel" in shown.output
    verified = run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub",
                   "--checkpoint", out)
    assert verified.exit_code == 0, verified.output
    # truncate the ledger to before the checkpoint: prove and verify both fail
    ledger = flow["case"] / "ledger.jsonl"
    ledger.write_bytes(b"".join(line + b"\n" for line in ledger.read_bytes().splitlines()[:3]))
    proved = run("ledger", "prove", flow["case"], "--checkpoint", out)
    assert proved.exit_code == 1
    assert "truncated or rolled back" in proved.output


def test_bundle_show_and_extract(flow, run):
    bundle = flow["summary"]["bundle"]
    shown = run("bundle", "show", bundle, "--trust", flow["keys"] / "alice.pub")
    assert shown.exit_code == 0
    assert "signature verified: alice" in shown.output
    assert "/srv/data/customers.csv" in shown.output
    dest = flow["tmp"] / "out"
    result = run("bundle", "extract", bundle, dest, "--trust", flow["keys"] / "alice.pub")
    assert result.exit_code == 0, result.output
    assert (dest / "data/srv/data/customers.csv").read_bytes() == (
        flow["host"] / "srv/data/customers.csv").read_bytes()
    assert json.loads((dest / "manifest.json").read_text())["bundle_id"]


def test_extract_refuses_traversal_and_writes_nothing_outside(flow, run):
    bundle = Path(flow["summary"]["bundle"])
    rewrite(bundle, add={"data/../../escaped.txt": b"pwned"})
    dest = flow["tmp"] / "sub" / "out"
    result = run("bundle", "extract", bundle, dest)
    assert result.exit_code == 1  # a hostile bundle is a problem found, as in verify
    assert "unsafe member name" in result.output
    assert not (flow["tmp"] / "escaped.txt").exists()
    assert not dest.exists()


def test_extract_refuses_nonempty_destination(flow, run):
    dest = flow["tmp"] / "full"
    dest.mkdir()
    (dest / "x").write_text("x")
    result = run("bundle", "extract", flow["summary"]["bundle"], dest)
    assert result.exit_code == 2
    expected = f"Error: {dest} is not empty; extract into a new or empty folder"
    assert result.output.strip() == expected


def test_missing_case_folder_is_a_usage_error(tmp_path, run):
    result = run("ledger", "show", tmp_path / "nope")
    assert result.exit_code == 2
    expected = f"Error: {tmp_path / 'nope'} is not a case folder (no such folder)"
    assert result.output.strip() == expected


def test_missing_source_folder(flow, run):
    result = run("collect", flow["case"], "--source", flow["tmp"] / "nope",
                 "--key", flow["keys"] / "alice.key")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert "nope" in result.output
    assert "Traceback" not in result.output


def test_case_trust_adds_a_second_examiner(flow, run):
    assert run("keys", "generate", "--name", "bob", "--out", flow["keys"]).exit_code == 0
    result = run("case", "trust", flow["case"], flow["keys"] / "bob.pub",
                 "--key", flow["keys"] / "alice.key", "--note", "second examiner")
    assert result.exit_code == 0
    bob_collect = run("collect", flow["case"], "--source", flow["host"],
                      "--key", flow["keys"] / "bob.key")
    assert bob_collect.exit_code == 0, bob_collect.output
    verified = run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub")
    assert verified.exit_code == 0, verified.output
    assert "bundles 2" in verified.output


def test_artifacts_list(run):
    result = run("artifacts", "list", "--os", "linux")
    assert result.exit_code == 0
    assert "LinuxAuthLogs" in result.output
    triage = run("artifacts", "list", "--os", "windows", "--triage")
    assert triage.exit_code == 0
    assert triage.output.strip()


def test_bundle_member_is_readable_by_a_plain_zip_tool(flow):
    with zipfile.ZipFile(flow["summary"]["bundle"]) as zf:
        names = zf.namelist()
    assert "data/etc/passwd" in names
    assert names[-1] == "manifest.dsse.json"
    assert os.path.getsize(flow["summary"]["bundle"]) > 0


def test_volatile_state_is_captured_before_any_file(flow, run):
    result = run("collect", flow["case"], "--source", flow["host"], "--key",
                 flow["keys"] / "alice.key", "--volatile", "--json")
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)["bundle"]
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        processes = json.loads(zf.read("volatile/processes.json"))
    volatile = [n for n in names if n.startswith("volatile/")]
    assert volatile[:2] == ["volatile/clock.json", "volatile/processes.json"]
    assert names[: len(volatile)] == volatile  # before every file
    assert any(p.get("pid") == os.getpid() for p in processes["items"])
    verified = run("verify", flow["case"], "--trust", flow["keys"] / "alice.pub")
    assert verified.exit_code == 0, verified.output


def test_volatile_on_an_image_is_a_usage_error(flow, run, tmp_path):
    image = tmp_path / "x.img"
    image.write_bytes(b"\0" * 4096)
    result = run("collect", flow["case"], "--source", image, "--key",
                 flow["keys"] / "alice.key", "--volatile")
    assert result.exit_code == 2
    assert "--volatile applies to a live host" in result.output


def test_verify_pinned_key_the_case_does_not_declare_signs_nothing(flow, run):
    """Pinning mallory's key does not let mallory vouch for the case's ledger."""
    from sealtrail.custody.checkpoint import Checkpoint, sign_checkpoint
    from sealtrail.custody.keys import load_private_key
    from sealtrail.custody.merkle import MerkleTree, leaf_hash

    keys = flow["keys"]
    assert run("keys", "generate", "--name", "mallory", "--out", keys).exit_code == 0
    lines = (flow["case"] / "ledger.jsonl").read_bytes().splitlines()
    origin = json.loads((flow["case"] / "case.json").read_text())["origin"]
    tree = MerkleTree([leaf_hash(line) for line in lines])
    forged = flow["tmp"] / "mallory.checkpoint"
    forged.write_bytes(sign_checkpoint(Checkpoint(origin, len(lines), tree.root()),
                                       load_private_key(keys / "mallory.key")))
    result = run("verify", flow["case"], "--trust", keys / "alice.pub",
                 "--trust", keys / "mallory.pub", "--checkpoint", forged)
    assert result.exit_code == 1, result.output
    assert f"checkpoint {forged}: no signature by a trusted key (signed by: mallory)" in (
        result.output)


# ---- what a crash leaves at the end of the ledger ------------------------------------------


def test_ledger_show_on_a_torn_tail_leaves_the_file_byte_identical(flow, run):
    ledger = flow["case"] / "ledger.jsonl"
    with open(ledger, "ab") as handle:
        handle.write(b'{"action":"no')
    before = ledger.read_bytes()
    for args in (("ledger", "show", flow["case"]), ("ledger", "show", flow["case"], "--json"),
                 ("verify", flow["case"])):
        assert run(*args).exit_code == 0
        assert ledger.read_bytes() == before, args
    assert not list(flow["case"].glob("ledger.torn-*"))


def test_last_entry_missing_its_newline_verifies_and_is_kept_by_the_next_writer(flow, run):
    ledger = flow["case"] / "ledger.jsonl"
    full = ledger.read_bytes()
    ledger.write_bytes(full[:-1])  # truncate -s -1
    verify = run("verify", flow["case"])
    assert verify.exit_code == 0
    assert "lacks its final newline" in verify.output
    assert ledger.read_bytes() == full[:-1]  # verify never writes
    count = full.count(b"\n")
    result = run("ledger", "record", flow["case"], "--key", flow["keys"] / "alice.key",
                 "--action", "note")
    assert result.exit_code == 0, result.output
    assert result.output == f"ledger entry {count}: note recorded\n"
    assert ledger.read_bytes().startswith(full)
    assert run("verify", flow["case"]).exit_code == 0


def test_invalid_last_line_no_longer_blocks_the_next_record(flow, run):
    ledger = flow["case"] / "ledger.jsonl"
    count = ledger.read_bytes().count(b"\n")
    with open(ledger, "ab") as handle:
        handle.write(b'{"not": "an entry"}\n')
    assert run("verify", flow["case"]).exit_code == 1
    key = flow["keys"] / "alice.key"
    result = run("ledger", "record", flow["case"], "--key", key, "--action", "note")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"ledger entry {count + 1}: note recorded\n")
    shown = run("ledger", "show", flow["case"]).output.splitlines()
    assert "ledger_repaired" in shown[count]
    (kept,) = flow["case"].glob("ledger.damaged-*.bin")
    assert kept.read_bytes() == b'{"not": "an entry"}\n'
    verify = run("verify", flow["case"])
    assert verify.exit_code == 0
    assert "moved an invalid last line aside" in verify.output


def test_ledger_repair_says_what_it_did(flow, run):
    key = flow["keys"] / "alice.key"
    assert run("ledger", "repair", flow["case"], "--key", key).output == "nothing to repair\n"
    ledger = flow["case"] / "ledger.jsonl"
    count = ledger.read_bytes().count(b"\n")
    with open(ledger, "ab") as handle:
        handle.write(b"\xff\n")
    result = run("ledger", "repair", flow["case"], "--key", key)
    assert result.exit_code == 0
    assert result.output.startswith(f"ledger entry {count}: ledger_repaired (invalid last line "
                                    "kept in ledger.damaged-")
    lines = ledger.read_bytes().split(b"\n")[:-1]
    sealed = next(i for i, line in enumerate(lines) if b'"action":"bundle_sealed"' in line)
    ledger.write_bytes(b"".join(line + b"\n" for line in lines[:sealed]))
    result = run("ledger", "repair", flow["case"], "--key", key)
    assert result.exit_code == 0
    assert result.output == (f"ledger entry {sealed}: bundle_sealed "
                             f"{flow['summary']['bundle_id']} (recovered)\n")
    assert run("verify", flow["case"]).exit_code == 0


def test_two_invalid_last_lines_are_not_repaired(flow, run):
    ledger = flow["case"] / "ledger.jsonl"
    with open(ledger, "ab") as handle:
        handle.write(b"x\ny\n")
    before = ledger.read_bytes()
    result = run("ledger", "record", flow["case"], "--key", flow["keys"] / "alice.key",
                 "--action", "note")
    assert result.exit_code == 3
    assert "restore the ledger from a copy" in result.output
    assert ledger.read_bytes() == before
