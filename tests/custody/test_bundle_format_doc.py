"""docs/bundle-format.md promises an independent verifier with standard tools; run its snippet."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md"


def doc_snippet() -> str:
    text = DOC.read_text()
    match = re.search(r"python3 - <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert match, "the verifier snippet is missing from docs/bundle-format.md"
    return match.group(1)


def run_snippet(tmp_path: Path, bundle: Path, public_b64: str) -> subprocess.CompletedProcess:
    with zipfile.ZipFile(bundle) as zf:
        (tmp_path / "env.json").write_bytes(zf.read("manifest.dsse.json"))
    code = doc_snippet().replace("TRUSTED_PUBLIC_KEY_B64", repr(public_b64))
    (tmp_path / "B.stb").write_bytes(bundle.read_bytes())
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)


def test_documented_verifier_accepts_a_good_bundle(tmp_path, sealed_case):
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.alice.key.public.b64)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", sealed_case.result.manifest_sha256]


def test_documented_verifier_rejects_a_flipped_byte(tmp_path, sealed_case):
    from tests.custody.tamper import flip_byte

    flip_byte(sealed_case.bundle, "etc/passwd")
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.alice.key.public.b64)
    assert done.returncode != 0
    assert "data/etc/passwd" in done.stderr


def test_documented_verifier_rejects_another_key(tmp_path, sealed_case):
    done = run_snippet(tmp_path, sealed_case.bundle, sealed_case.keyring.mallory.key.public.b64)
    assert done.returncode != 0
    assert "BadSignatureError" in done.stderr
