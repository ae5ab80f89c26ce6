"""The bundle attack corpus: each test tampers with one good bundle and asserts the report."""

from __future__ import annotations

import zipfile

import pytest

from sealtrail.custody.bundle_format import MANIFEST_MEMBER
from sealtrail.custody.verify import check_case, check_single_bundle
from sealtrail.errors import (
    HashMismatch,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
    SignatureInvalid,
    SizeMismatch,
    UnsafeMemberPath,
    UntrustedKey,
)
from tests.custody.tamper import edit_manifest, flip_byte, member_named, rewrite


def only_problem(report):
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def test_good_bundle_verifies_alone_and_in_its_case(sealed_case):
    alice = sealed_case.keyring.alice.key.public
    report = check_single_bundle(sealed_case.bundle, [alice])
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked["members"] == sealed_case.result.members > 5
    assert check_case(sealed_case.case.root, [alice]).ok


def test_one_flipped_byte_in_a_member_is_reported_with_that_member(sealed_case):
    name = flip_byte(sealed_case.bundle, "var/log/auth.log", position=10)
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, HashMismatch)
    assert problem.where.endswith(f"member {name}")
    assert name == "data/var/log/auth.log"
    assert problem.expected != problem.observed
    assert len(problem.observed) == 64
    assert "SHA-256 differs from the manifest" in str(problem)


def test_deleted_member_is_reported_missing(sealed_case):
    name = member_named(sealed_case.bundle, "home/alice/.bash_history")
    rewrite(sealed_case.bundle, drop=name)
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, MemberMissing)
    assert problem.where.endswith(f"member {name}")


def test_added_member_is_reported_unexpected(sealed_case):
    rewrite(sealed_case.bundle, add={"data/var/log/planted.log": b"evil"})
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, MemberUnexpected)
    assert problem.where.endswith("member data/var/log/planted.log")


def test_replaced_member_of_other_length_is_a_size_mismatch(sealed_case):
    name = member_named(sealed_case.bundle, "etc/passwd")
    rewrite(sealed_case.bundle, replace={name: b"root:x:0:0::/root:/bin/sh\n"})
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, SizeMismatch)
    assert problem.observed == len(b"root:x:0:0::/root:/bin/sh\n")


def test_edited_manifest_fails_its_signature(sealed_case):
    def edit(manifest):
        manifest["collection"]["examiner"] = "Mallory"

    edit_manifest(sealed_case.bundle, edit)
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, SignatureInvalid)
    assert "does not verify" in str(problem)


def test_manifest_edited_to_hide_a_flipped_byte_still_fails(sealed_case):
    """The attacker fixes up the member hash in the manifest: the signature catches it."""
    flip_byte(sealed_case.bundle, "var/log/syslog")

    def edit(manifest):
        for member in manifest["members"]:
            if member["name"].endswith("var/log/syslog"):
                member["sha256"] = "0" * 64

    edit_manifest(sealed_case.bundle, edit)
    report = check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])
    assert isinstance(report.problems[0], SignatureInvalid)


def test_bundle_resigned_by_untrusted_key_is_rejected(sealed_case):
    mallory = sealed_case.keyring.mallory.key

    def edit(manifest):
        manifest["collection"]["examiner"] = "Mallory"

    edit_manifest(sealed_case.bundle, edit, resign_with=mallory)
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, UntrustedKey)
    assert problem.observed == mallory.key_id
    # In the case, the bundle must be signed by the key that sealed it in the ledger.
    report = check_case(sealed_case.case.root, [sealed_case.keyring.alice.key.public])
    assert [type(p) for p in report.problems] == [UntrustedKey]


def test_manifest_removed_means_never_sealed(sealed_case):
    rewrite(sealed_case.bundle, drop=MANIFEST_MEMBER)
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, MemberMissing)
    assert "never sealed" in str(problem)


def test_not_a_zip_is_reported_not_raised(sealed_case):
    sealed_case.bundle.write_bytes(b"not a zip at all")
    problem = only_problem(check_single_bundle(sealed_case.bundle,
                                               [sealed_case.keyring.alice.key.public]))
    assert isinstance(problem, ManifestInvalid)
    assert "not a readable ZIP file" in str(problem)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("data/../../etc/cron.d/evil", "'..' component"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "drive letter"),
        ("data/a\\..\\..\\evil", "backslash"),
        ("data/caf\u00e9", "alphabet"),
        ("data/x%zz", "malformed %-escape"),
    ],
)
def test_unsafe_member_names_are_rejected(sealed_case, name, reason):
    rewrite(sealed_case.bundle, add={name: b"x"})
    report = check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])
    unsafe = [p for p in report.problems if isinstance(p, UnsafeMemberPath)]
    assert unsafe, [str(p) for p in report.problems]
    assert reason in str(unsafe[0])


def test_member_name_with_a_nul_byte_is_rejected(sealed_case):
    """zipfile truncates names at NUL; the reader must judge the raw name, not the cut one."""
    rewrite(sealed_case.bundle, add={"data/evilX.txt": b"x"})
    data = sealed_case.bundle.read_bytes()
    assert data.count(b"data/evilX.txt") == 2  # local header and central directory
    sealed_case.bundle.write_bytes(data.replace(b"data/evilX.txt", b"data/evil\x00.txt"))
    report = check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])
    unsafe = [p for p in report.problems if isinstance(p, UnsafeMemberPath)]
    assert unsafe
    assert "contains a NUL byte" in str(unsafe[0])


def test_names_that_collide_after_case_folding_are_rejected(sealed_case):
    name = member_named(sealed_case.bundle, "etc/passwd")
    rewrite(sealed_case.bundle, add={name.upper().replace("DATA/", "data/"): b"x"})
    report = check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])
    dupes = [p for p in report.problems if isinstance(p, UnsafeMemberPath)]
    assert dupes
    assert "duplicate member name" in str(dupes[0])


def test_bundle_is_a_plain_stored_zip(sealed_case):
    """The format promise: any ZIP reader lists it, members are stored, manifest is last."""
    with zipfile.ZipFile(sealed_case.bundle) as zf:
        infos = zf.infolist()
        assert infos[-1].filename == MANIFEST_MEMBER
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert zf.testzip() is None
