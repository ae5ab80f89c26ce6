"""docs/bundle-format.md promises an independent verifier with standard tools; run its snippet
against a good bundle and every tampered one, and require it to decide as check_bundle does."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sealtrail.custody.bundle_format import MANIFEST_MEMBER
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.verify import check_single_bundle
from tests.custody.tamper import (
    edit_envelope,
    edit_manifest,
    flip_byte,
    raw_members,
    read_envelope,
    rewrite,
    write_zip,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md"


def doc_snippet() -> str:
    text = DOC.read_text()
    match = re.search(r"python3 - <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert match, "the verifier snippet is missing from docs/bundle-format.md"
    return match.group(1)


def run_snippet(tmp_path: Path, bundle: Path, public_b64: str) -> subprocess.CompletedProcess:
    code = doc_snippet().replace("TRUSTED_PUBLIC_KEY_B64", repr(public_b64))
    assert 'BUNDLE = "B.stb"' in code
    code = code.replace('BUNDLE = "B.stb"', f"BUNDLE = {bundle.name!r}")
    copy = tmp_path / "doc-verifier"
    copy.mkdir(exist_ok=True)
    (copy / bundle.name).write_bytes(bundle.read_bytes())
    return subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True,
                          text=True, check=False)


def test_documented_verifier_accepts_a_good_bundle(tmp_path, sealed_case):
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.alice.key.public.b64)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", sealed_case.result.manifest_sha256]


def test_documented_verifier_rejects_a_flipped_byte(tmp_path, sealed_case):
    flip_byte(sealed_case.bundle, "etc/passwd")
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.alice.key.public.b64)
    assert done.returncode != 0
    assert "data/etc/passwd: SHA-256 differs from the manifest" in done.stderr


def test_documented_verifier_rejects_another_key(tmp_path, sealed_case):
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.mallory.key.public.b64)
    assert done.returncode != 0
    assert "not signed by a trusted key" in done.stderr


def test_documented_verifier_does_not_use_zipfile_or_only_the_first_signature():
    code = doc_snippet()
    assert "zipfile" not in code
    assert "signatures'][0]" not in code and 'signatures"][0]' not in code


# --- Each attack: the doc's verifier and check_bundle decide the same ---


def _pad_bits(text: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = text.rstrip("=")
    return body[:-1] + alphabet[alphabet.index(body[-1]) | 1] + text[len(body):]


def _resign(case, edit):
    edit_manifest(case.bundle, edit, resign_with=case.keyring.alice.key)


def _rename_passwd(case, spelling):
    members = [(spelling.encode() if n == b"data/etc/passwd" else n, d)
               for n, d in raw_members(case.bundle)]
    write_zip(case.bundle, members)

    def edit(manifest):
        for member in manifest["members"]:
            if member["name"] == "data/etc/passwd":
                member["name"] = spelling

    _resign(case, edit)


def _extra_bad_signature(case):
    def edit(envelope):
        good = envelope["signatures"][0]
        bad = base64.b64encode(bytes(64)).decode()
        envelope["signatures"] = [good, {"keyid": good["keyid"], "sig": bad}]

    edit_envelope(case.bundle, edit)


def _untrusted_signature_first(case):
    def edit(envelope):
        other = {"keyid": case.keyring.mallory.key.key_id,
                 "sig": base64.b64encode(bytes(64)).decode()}
        envelope["signatures"] = [other, *envelope["signatures"]]

    edit_envelope(case.bundle, edit)


def _nul_name(case):
    rewrite(case.bundle, add={"data/evilX.txt": b"x"})
    data = case.bundle.read_bytes()
    case.bundle.write_bytes(data.replace(b"data/evilX.txt", b"data/evil\x00.txt"))


def _member_listed_twice(case):
    def edit(manifest):
        manifest["members"].append(dict(manifest["members"][0]))
        manifest["totals"]["members"] += 1
        manifest["totals"]["bytes"] += manifest["members"][0]["size"]
        outcome = manifest["members"][0]["outcome"]
        manifest["totals"]["outcomes"][outcome] += 1

    _resign(case, edit)


def _duplicate_envelope_key(case):
    data = canonical_json(read_envelope(case.bundle))
    rewrite(case.bundle, replace={MANIFEST_MEMBER: b'{"payload":"e30=",' + data[1:]})


ATTACKS = {
    "untouched": lambda case: None,
    "zip64 end records (allowed)": lambda case: write_zip(
        case.bundle, raw_members(case.bundle), zip64_end=True),
    "zip64 fields everywhere (allowed)": lambda case: write_zip(
        case.bundle, raw_members(case.bundle), zip64_fields=True, zip64_end=True),
    "flipped byte": lambda case: flip_byte(case.bundle, "etc/passwd"),
    "member deleted": lambda case: rewrite(
        case.bundle, drop=next(n for n, _ in raw_members(case.bundle)).decode()),
    "member added": lambda case: rewrite(case.bundle, add={"data/planted": b"x"}),
    "bytes prepended": lambda case: case.bundle.write_bytes(b"JUNK" + case.bundle.read_bytes()),
    "prefix, offsets fixed": lambda case: write_zip(
        case.bundle, raw_members(case.bundle), prefix=b"hidden"),
    "gap between members": lambda case: write_zip(
        case.bundle, raw_members(case.bundle), gap_before={1: b"hidden"}),
    "bytes before central directory": lambda case: write_zip(
        case.bundle, raw_members(case.bundle), before_cd=b"hidden"),
    "bytes appended": lambda case: case.bundle.write_bytes(case.bundle.read_bytes() + b"JUNK"),
    "zip comment": lambda case: write_zip(case.bundle, raw_members(case.bundle), comment=b"c"),
    "manifest first": lambda case: write_zip(
        case.bundle, [raw_members(case.bundle)[-1], *raw_members(case.bundle)[:-1]]),
    "member outside data/": lambda case: rewrite(case.bundle, add={"etc/evil": b"x"}),
    "NUL in a name": _nul_name,
    "needless %-escape": lambda case: _rename_passwd(case, "data/%65tc/passwd"),
    "lower-case hex": lambda case: _rename_passwd(case, "data/etc/passwd%c3"),
    "needless ~2 suffix": lambda case: _rename_passwd(case, "data/etc/passwd~2"),
    "tilde inside": lambda case: _rename_passwd(case, "data/etc~2/passwd"),
    "totals.members": lambda case: _resign(
        case, lambda m: m["totals"].update(members=m["totals"]["members"] + 1)),
    "totals.bytes": lambda case: _resign(
        case, lambda m: m["totals"].update(bytes=m["totals"]["bytes"] + 1)),
    "totals.outcomes": lambda case: _resign(
        case, lambda m: m["totals"]["outcomes"].update(missing=7)),
    "member listed twice": _member_listed_twice,
    "path_b64 pad bits": lambda case: _resign(
        case, lambda m: m["members"][0]["source"].update(path_b64="QR==")),
    "sig pad bits": lambda case: edit_envelope(
        case.bundle, lambda e: e["signatures"][0].update(sig=_pad_bits(e["signatures"][0]["sig"]))),
    "second signature by the trusted key is bad": _extra_bad_signature,
    "untrusted signature first (ignored)": _untrusted_signature_first,
    "envelope duplicate key": _duplicate_envelope_key,
    "envelope extra key": lambda case: edit_envelope(case.bundle, lambda e: e.update(x=1)),
    "manifest edited, not re-signed": lambda case: edit_manifest(
        case.bundle, lambda m: m["collection"].update(examiner="Mallory")),
    "re-signed by an untrusted key": lambda case: edit_manifest(
        case.bundle, lambda m: None, resign_with=case.keyring.mallory.key),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_documented_verifier_decides_as_check_bundle(tmp_path, sealed_case, attack):
    ATTACKS[attack](sealed_case)
    report = check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.alice.key.public.b64)
    doc_ok = done.returncode == 0
    assert doc_ok == report.ok, (done.stderr[-400:], [str(p) for p in report.problems])
    allowed = {"untouched", "zip64 end records (allowed)", "zip64 fields everywhere (allowed)",
               "untrusted signature first (ignored)"}
    assert report.ok == (attack in allowed)
