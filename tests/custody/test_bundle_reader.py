"""The bundle attack corpus: each test tampers with one good bundle and asserts the report."""

from __future__ import annotations

import base64
import struct
import zipfile

import pytest

from sealtrail.custody.bundle_format import MANIFEST_MEMBER
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.verify import check_case, check_single_bundle
from sealtrail.errors import (
    ContainerInvalid,
    HashMismatch,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
    SignatureInvalid,
    SizeMismatch,
    UnsafeMemberPath,
    UntrustedKey,
)
from tests.custody.tamper import (
    edit_envelope,
    edit_manifest,
    flip_byte,
    member_named,
    raw_members,
    read_envelope,
    rewrite,
    write_zip,
)


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
    assert isinstance(problem, ContainerInvalid)
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


# --- A bundle is exactly its ZIP records (docs/bundle-format.md section 1) ---


def check(sealed_case):
    return check_single_bundle(sealed_case.bundle, [sealed_case.keyring.alice.key.public])


@pytest.mark.parametrize(("zip64_end", "zip64_fields"), [(False, False), (True, False),
                                                         (True, True)])
def test_hand_written_exact_layout_verifies(sealed_case, zip64_end, zip64_fields):
    """Control for the layout attacks below: the same helper, no extra bytes, verifies."""
    write_zip(sealed_case.bundle, raw_members(sealed_case.bundle), zip64_end=zip64_end,
              zip64_fields=zip64_fields)
    report = check(sealed_case)
    assert report.ok, [str(p) for p in report.problems]


def test_bytes_prepended_to_bundle_are_reported(sealed_case):
    """``cat junk bundle``: zipfile shifts every offset to fit and reads the members."""
    sealed_case.bundle.write_bytes(b"JUNK" * 4 + sealed_case.bundle.read_bytes())
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.where == f"bundle {sealed_case.bundle.name}"
    assert "central directory does not end where the end records begin" in problem.message
    assert problem.observed - problem.expected == 16


def test_bytes_before_the_first_local_header_with_offsets_fixed_up_are_reported(sealed_case):
    members = raw_members(sealed_case.bundle)
    write_zip(sealed_case.bundle, members, prefix=b"hidden evidence")
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.where.endswith(f"member {members[0][0].decode()}")
    assert "bytes before the first local header" in problem.message
    assert (problem.expected, problem.observed) == (0, len(b"hidden evidence"))


def test_bytes_between_members_are_reported(sealed_case):
    members = raw_members(sealed_case.bundle)
    write_zip(sealed_case.bundle, members, gap_before={len(members) - 1: b"x" * 7})
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.where.endswith(f"member {MANIFEST_MEMBER}")
    assert "bytes between members" in problem.message
    assert problem.observed - problem.expected == 7


def test_bytes_between_last_member_and_central_directory_are_reported(sealed_case):
    write_zip(sealed_case.bundle, raw_members(sealed_case.bundle), before_cd=b"x" * 5)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert "does not end where the central directory begins" in problem.message
    assert problem.expected - problem.observed == 5


def test_bytes_appended_after_the_end_record_are_reported(sealed_case):
    sealed_case.bundle.write_bytes(sealed_case.bundle.read_bytes() + b"appended")
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert "bytes after the end of central directory record" in problem.message
    assert problem.observed == len(b"appended")


def test_zip_comment_is_reported(sealed_case):
    write_zip(sealed_case.bundle, raw_members(sealed_case.bundle), comment=b"note to self")
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert "has a ZIP comment; a bundle has none" in problem.message
    assert problem.observed == len(b"note to self")


def test_manifest_not_the_last_member_is_reported(sealed_case):
    members = raw_members(sealed_case.bundle)
    write_zip(sealed_case.bundle, [members[-1], *members[:-1]])
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.message == "manifest.dsse.json is not the last member"
    assert problem.observed == members[-2][0].decode()


def test_local_header_naming_another_member_is_reported(sealed_case):
    members = raw_members(sealed_case.bundle)
    data = sealed_case.bundle.read_bytes()
    name = members[0][0]
    local = data.index(name)  # the first occurrence is in the first local header
    swapped = name[:-1] + (b"X" if name[-1:] != b"X" else b"Y")
    sealed_case.bundle.write_bytes(data[:local] + swapped + data[local + len(name):])
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.message == "local header names a different member"
    assert (problem.expected, problem.observed) == (name.decode(), swapped.decode())


def local_header_crc_flipped(bundle, index):
    """Change the CRC-32 in member ``index``'s local header only (central directory intact)."""
    with BundleFile(bundle) as reader:
        member = reader.members[index]
    data = bytearray(bundle.read_bytes())
    data[member.header_offset + 14] ^= 0xFF
    bundle.write_bytes(bytes(data))
    return member.name


def test_opening_reads_no_local_header_and_a_member_read_checks_its_own(sealed_case):
    """Local headers are read just before their member's bytes (cold-cache cost, issue 9):
    opening succeeds, reading the bad member does not, nor does the whole-layout check."""
    name = local_header_crc_flipped(sealed_case.bundle, 1)
    with BundleFile(sealed_case.bundle) as bundle:
        good, bad = bundle.members[0], bundle.members[1]
        assert bad.name == name
        assert b"".join(bundle.iter_raw(good))
        for attempt in (lambda: next(bundle.iter_raw(bad)), lambda: bundle.open_member(bad),
                        bundle.check_layout):
            with pytest.raises(ContainerInvalid, match="local header disagrees"):
                attempt()


@pytest.mark.parametrize("where", ["middle", "unexpected", "unexpected, bad signature"])
def test_a_local_header_that_is_never_hashed_is_still_checked(sealed_case, where):
    """check_bundle checks the local headers of members it does not read (an unexpected
    member, or every member when the manifest fails) and then reports only the departure."""
    if where == "middle":
        index = len(raw_members(sealed_case.bundle)) // 2
    else:
        rewrite(sealed_case.bundle, add={"data/extra.txt": b"not in the manifest"})
        index = len(raw_members(sealed_case.bundle)) - 2  # just before the manifest
    if where.endswith("bad signature"):
        edit_envelope(sealed_case.bundle, lambda env: env["signatures"][0].update(
            sig=base64.b64encode(b"\0" * 64).decode()))
    name = local_header_crc_flipped(sealed_case.bundle, index)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.where.endswith(f"member {name}")
    assert "local header disagrees with the central directory" in problem.message


def test_the_first_departure_in_file_order_is_reported(sealed_case):
    """The manifest (last) is read first, but the departure reported is the first in the file,
    as a check of the whole file from its first byte finds it."""
    members = raw_members(sealed_case.bundle)
    write_zip(sealed_case.bundle, members, gap_before={len(members) - 1: b"x" * 7})
    name = local_header_crc_flipped(sealed_case.bundle, 2)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert problem.where.endswith(f"member {name}")
    assert "local header disagrees with the central directory" in problem.message


def test_extract_refuses_a_bad_local_header_before_writing_anything(sealed_case, tmp_path):
    from sealtrail.custody.extract import extract_bundle

    members = raw_members(sealed_case.bundle)
    local_header_crc_flipped(sealed_case.bundle, len(members) - 2)
    dest = tmp_path / "out"
    with pytest.raises(ContainerInvalid, match="local header disagrees"):
        extract_bundle(sealed_case.bundle, dest, [sealed_case.keyring.alice.key.public])
    assert not dest.exists()


# --- The manifest's totals match its records ---


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("members", lambda totals: totals["members"] + 1),
        ("bytes", lambda totals: totals["bytes"] - 1),
        ("outcomes", lambda totals: {**totals["outcomes"], "missing": 99}),
    ],
)
def test_totals_that_do_not_match_the_members_are_reported(sealed_case, key, change):
    old = {}

    def edit(manifest):
        old.update(manifest["totals"])
        manifest["totals"][key] = change(manifest["totals"])

    edit_manifest(sealed_case.bundle, edit, resign_with=sealed_case.keyring.alice.key)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.where == f"bundle {sealed_case.bundle.name} manifest"
    assert problem.message == f"totals.{key} does not match the records"
    assert problem.expected == old[key]
    assert problem.observed == change(old)


# --- Member names: under data/, one encoding each (section 2) ---


def test_member_outside_data_gets_its_own_message(sealed_case):
    rewrite(sealed_case.bundle, add={"etc/cron.d/evil": b"x"})
    unsafe = [p for p in check(sealed_case).problems if isinstance(p, UnsafeMemberPath)]
    assert [p.message for p in unsafe] == [
        "unsafe member name: is outside data/ (only data/..., volatile/... and "
        "manifest.dsse.json may appear)"
    ]
    assert unsafe[0].where.endswith("member 'etc/cron.d/evil'")


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("data/%65tc/passwd", "escapes a byte that is written as itself (%65 for 'e')"),
        ("data/etc%2Fpasswd", "escapes a byte that is written as itself (%2F for '/')"),
        ("data/etc/passw%64", "escapes a byte that is written as itself (%64 for 'd')"),
        ("data/etc~2/passwd", "has '~' other than the suffix ~N (N >= 2) at the end"),
        ("data/etc/passwd~1", "has '~' other than the suffix ~N (N >= 2) at the end"),
        ("data/etc/passwd~02", "has '~' other than the suffix ~N (N >= 2) at the end"),
        ("data/etc/passwd~2", "suffix ~2 without an earlier member 'data/etc/passwd'"),
    ],
)
def test_second_spelling_of_a_member_name_is_rejected(sealed_case, spelling, reason):
    stored: dict[str, bytes] = {}
    with BundleFile(sealed_case.bundle) as src:
        for m in src.members:
            stored[m.name] = b"".join(src.iter_raw(m))
    members = [(n.encode(), d) for n, d in stored.items() if n != MANIFEST_MEMBER]
    members = [(spelling.encode() if n == b"data/etc/passwd" else n, d) for n, d in members]
    write_zip(sealed_case.bundle, [*members, (MANIFEST_MEMBER.encode(), stored[MANIFEST_MEMBER])])

    def edit(manifest):
        for member in manifest["members"]:
            if member["name"] == "data/etc/passwd":
                member["name"] = spelling

    edit_manifest(sealed_case.bundle, edit, resign_with=sealed_case.keyring.alice.key)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, UnsafeMemberPath)
    assert problem.where.endswith(f"member {spelling!r}")
    assert reason in problem.message


# --- Base64 is strict everywhere (sections 3 and 4) ---


def with_pad_bits(text: str) -> str:
    """The same bytes in a second base64 spelling: a pad bit set in the last data symbol."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = text.rstrip("=")
    assert len(body) < len(text), "no padding, so no pad bits"
    last = alphabet.index(body[-1])
    spelling = body[:-1] + alphabet[last | 1] + text[len(body):]
    assert spelling != text
    assert base64.b64decode(spelling) == base64.b64decode(text)
    return spelling


def test_signature_base64_with_nonzero_pad_bits_is_rejected(sealed_case):
    def edit(envelope):
        envelope["signatures"][0]["sig"] = with_pad_bits(envelope["signatures"][0]["sig"])

    edit_envelope(sealed_case.bundle, edit)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message.startswith("envelope signature 0 sig is not strict base64")


def test_payload_base64_with_nonzero_pad_bits_is_rejected(sealed_case):
    def edit(manifest):  # make the payload length not a multiple of 3: base64 padding
        while len(canonical_json(manifest)) % 3 == 0:
            manifest["collection"]["examiner"] += " "

    edit_manifest(sealed_case.bundle, edit, resign_with=sealed_case.keyring.alice.key)
    assert check(sealed_case).ok
    edit_envelope(sealed_case.bundle,
                  lambda envelope: envelope.update(payload=with_pad_bits(envelope["payload"])))
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message.startswith("envelope payload is not strict base64")


def test_source_path_b64_with_nonzero_pad_bits_is_rejected(sealed_case):
    def edit(manifest):
        manifest["members"][0]["source"]["path_b64"] = "QR=="  # 'QQ==' spelled otherwise

    edit_manifest(sealed_case.bundle, edit, resign_with=sealed_case.keyring.alice.key)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.where == f"bundle {sealed_case.bundle.name} manifest members[0]"
    assert problem.message.startswith("source.path_b64 is not strict base64")
    assert problem.observed == "QR=="


def test_envelope_with_a_duplicate_key_is_rejected(sealed_case):
    """Parsers differ on duplicate keys (first or last wins): the envelope must be canonical."""
    envelope = read_envelope(sealed_case.bundle)
    data = canonical_json(envelope)
    forged = b'{"payload":"e30=",' + data[1:]
    rewrite(sealed_case.bundle, replace={MANIFEST_MEMBER: forged})
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message.startswith("signature envelope is not canonical JSON")


def test_envelope_with_an_extra_key_is_rejected(sealed_case):
    edit_envelope(sealed_case.bundle, lambda envelope: envelope.update(note="trust me"))
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message == "signature envelope does not have exactly its keys"


def test_manifest_listing_a_member_twice_is_reported(sealed_case):
    """A second record for one name could carry another hash; the reader must not pick one."""
    def edit(manifest):
        twin = dict(manifest["members"][0], sha256="0" * 64)
        manifest["members"].append(twin)
        manifest["totals"].update(members=manifest["totals"]["members"] + 1,
                                  bytes=manifest["totals"]["bytes"] + twin["size"])
        manifest["totals"]["outcomes"][twin["outcome"]] += 1

    edit_manifest(sealed_case.bundle, edit, resign_with=sealed_case.keyring.alice.key)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message == "lists a member twice"


def test_zip64_extra_field_disagreeing_with_the_central_directory_is_reported(sealed_case):
    """A lax reader takes the local header's ZIP64 sizes; the central directory must agree."""
    write_zip(sealed_case.bundle, raw_members(sealed_case.bundle), zip64_fields=True)
    data = bytearray(sealed_case.bundle.read_bytes())
    size = struct.unpack_from("<Q", data, 30 + data[26] + 4)[0]  # first local header's extra
    struct.pack_into("<Q", data, 30 + data[26] + 4, size + 1)
    sealed_case.bundle.write_bytes(bytes(data))
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ContainerInvalid)
    assert "local header disagrees with the central directory" in problem.message


def test_manifest_envelope_over_the_format_bound_is_rejected_unread(sealed_case, monkeypatch):
    """docs/bundle-format.md section 3 bounds manifest.dsse.json, so a verifier's memory is
    bounded too; the reader refuses a larger one before reading it, naming both sizes."""
    from sealtrail.custody import bundle_reader

    size = len(read_envelope_bytes(sealed_case.bundle))
    monkeypatch.setattr(bundle_reader, "MAX_ENVELOPE_BYTES", size - 1)
    problem = only_problem(check(sealed_case))
    assert isinstance(problem, ManifestInvalid)
    assert problem.message == f"larger than the {size - 1} bytes the format allows"
    assert (problem.expected, problem.observed) == (size - 1, size)


def read_envelope_bytes(bundle):
    with zipfile.ZipFile(bundle) as archive:
        return archive.read(MANIFEST_MEMBER)


def test_verify_and_extract_memory_stays_a_small_multiple_of_the_manifest(tmp_path, keyring):
    """Checking a manifest used to peak at ~17x its payload in Python allocations (envelope
    read and joined, payload as str, whole re-serialisation, PyNaCl's message copies and
    orjson's document tree), 19x here; now about 6x and 7x (docs/benchmarks.md,
    "Many small members"). The bound on manifest.dsse.json (bundle-format.md 3) rests on it."""
    import tracemalloc

    from sealtrail.custody.bundle_format import MANIFEST_KIND
    from sealtrail.custody.bundle_reader import check_bundle
    from sealtrail.custody.bundle_writer import BundleWriter
    from sealtrail.custody.extract import extract_bundle

    count = 5_000  # a payload of ~2.3 MB, over canonical.LARGE_JSON
    writer = BundleWriter(tmp_path, "many")
    members = []
    for i in range(count):
        sink = writer.open_member(b"var/log/d%03d/f%05d.log" % (i // 1000, i))
        written = sink.close()
        members.append({
            "name": written.name, "sha256": written.sha256, "size": 0, "outcome": "collected",
            "reason": "", "artifacts": ["path:var/log/**"],
            "source": {"path": f"/var/log/d{i // 1000:03d}/f{i:05d}.log", "kind": "file",
                       "mode": "100644", "uid": 0, "gid": 0, "nlink": 1, "size": 0,
                       "inode": str(1000 + i), "device": "65024",
                       "atime": "2026-12-08T02:18:31.637287510Z",
                       "mtime": "2026-12-08T02:18:31.637287510Z",
                       "ctime": "2026-12-08T02:18:31.637287510Z"}})
    manifest = {"type": MANIFEST_KIND, "version": 1, "bundle_id": "many", "case_id": "c",
                "members": members, "entries": [],
                "totals": {"members": count, "bytes": 0, "outcomes": {"collected": count}}}
    path, payload = writer.seal(manifest, keyring.alice.key)
    del manifest, members
    trusted = [keyring.alice.key.public]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = check_bundle(path, trusted)
        verify_peak = tracemalloc.get_traced_memory()[1] - base
        del result
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        extracted = extract_bundle(path, tmp_path / "out", trusted)
        extract_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert not extracted.problems
    assert len(extracted.written) == count
    assert verify_peak < 8 * len(payload), verify_peak / len(payload)
    assert extract_peak < 9 * len(payload), extract_peak / len(payload)
