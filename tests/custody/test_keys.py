"""Tests for sealtrail/custody/keys.py: key files, ids, and Ed25519 against Wycheproof."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from sealtrail.custody.keys import (
    MAX_KEY_FILE_BYTES,
    KeyFileWarning,
    PublicKey,
    SigningKey,
    check_key_name,
    key_id_of,
    load_key_file,
    load_private_key,
    load_public_key,
    write_key_pair,
)
from sealtrail.errors import KeyFileError, UsageError
from tests.shared_data import ABSENT, vector_path, vectors_dir

SEED = bytes(range(32))


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[SigningKey, Path, Path]:
    key = SigningKey("alice", SEED)
    private_path, public_path = write_key_pair(key, tmp_path / "keys")
    return key, private_path, public_path


def _rewrite(path: Path, **changes: object) -> None:
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))


def _key_error(load, path: Path, fragment: str) -> KeyFileError:
    with pytest.raises(KeyFileError) as info:
        load(path)
    assert info.value.path == str(path)
    assert fragment in info.value.reason, info.value.reason
    assert str(info.value) == f"key file {path}: {info.value.reason}"
    return info.value


# --- key files --------------------------------------------------------------------------------


def test_key_file_round_trip(key_pair):
    key, private_path, public_path = key_pair
    assert private_path.name == "alice.key"
    assert public_path.name == "alice.pub"
    assert load_private_key(private_path) == key
    assert load_public_key(public_path) == key.public
    assert load_private_key(str(private_path)) == key


def test_a_private_key_file_is_refused_where_a_public_key_belongs(key_pair):
    _, private_path, _ = key_pair
    _key_error(load_public_key, private_path, "is a private key; give its public key (.pub) here")


def test_load_key_file_reads_either_kind_and_says_which(key_pair):
    key, private_path, public_path = key_pair
    assert load_key_file(private_path) == key
    assert load_key_file(public_path) == key.public


def test_generated_key_round_trip(tmp_path: Path):
    key = SigningKey.generate("bob")
    private_path, _ = write_key_pair(key, tmp_path)
    assert load_private_key(private_path) == key
    assert key.public.verify(b"msg", load_private_key(private_path).sign(b"msg"))


def test_private_file_is_mode_0600_and_public_0644(key_pair):
    _, private_path, public_path = key_pair
    assert stat.S_IMODE(os.stat(private_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(public_path).st_mode) == 0o644


def test_the_folder_written_into_is_created_0700_and_an_existing_one_left_alone(tmp_path):
    write_key_pair(SigningKey("alice", SEED), tmp_path / "new" / "keys")
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "keys").st_mode) == 0o700
    (tmp_path / "shared").mkdir(mode=0o755)
    write_key_pair(SigningKey("alice", SEED), tmp_path / "shared")
    assert stat.S_IMODE(os.stat(tmp_path / "shared").st_mode) == 0o755


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_private_key_open_to_group_or_others_loads_with_one_warning(key_pair, mode):
    key, private_path, _ = key_pair
    private_path.chmod(mode)
    with pytest.warns(KeyFileWarning) as caught:
        assert load_private_key(private_path) == key
    assert [str(w.message) for w in caught] == [
        f"private key file {private_path} is open to group or others (mode {mode:04o}); "
        f"make it private with: chmod 600 {private_path}"]
    told: list[str] = []
    assert load_key_file(private_path, warn=told.append) == key
    assert told == [str(caught[0].message)]


def test_a_private_key_of_mode_0600_or_0400_loads_without_a_warning(key_pair, recwarn):
    key, private_path, _ = key_pair
    for mode in (0o600, 0o400):
        private_path.chmod(mode)
        assert load_private_key(private_path) == key
    assert not recwarn.list


def test_refuses_to_overwrite_a_key_file(key_pair):
    _, private_path, _ = key_pair
    before = private_path.read_bytes()
    with pytest.raises(UsageError, match="already exists; refusing to overwrite a key file"):
        write_key_pair(SigningKey("alice", b"\x09" * 32), private_path.parent)
    assert private_path.read_bytes() == before


def test_loading_public_key_as_private_is_refused(key_pair):
    _, _, public_path = key_pair
    _key_error(load_private_key, public_path, "is a public key")


def test_corrupt_json_is_refused(key_pair):
    _, private_path, _ = key_pair
    private_path.write_text('{"type": "sealtrail.ed25519.private", ')
    _key_error(load_private_key, private_path, "not a sealtrail key file (not JSON)")


def test_truncated_seed_is_refused(key_pair):
    _, private_path, _ = key_pair
    _rewrite(private_path, seed=base64.b64encode(SEED[:31]).decode())
    _key_error(load_private_key, private_path, "corrupt: seed is not 32 bytes of base64")


def test_seed_in_bad_base64_is_refused(key_pair):
    _, private_path, _ = key_pair
    _rewrite(private_path, seed="not base64!")
    _key_error(load_private_key, private_path, "corrupt: seed is not 32 bytes of base64")


def _second_spelling(b64: str) -> str:
    """The same bytes in base64 with non-zero pad bits (a lax decoder reads them alike)."""
    assert b64.endswith("=") and not b64.endswith("==")  # 32 bytes: one pad character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(b64[-2])
    other = b64[:-2] + alphabet[last | 1] + "="
    assert other != b64 and base64.b64decode(other) == base64.b64decode(b64)
    return other


def test_seed_with_non_zero_pad_bits_is_refused(key_pair):
    """Strict base64 everywhere: one spelling per value, key files included."""
    _, private_path, _ = key_pair
    _rewrite(private_path, seed=_second_spelling(base64.b64encode(SEED).decode()))
    _key_error(load_private_key, private_path, "corrupt: seed is not 32 bytes of base64")


def test_public_key_with_non_zero_pad_bits_is_refused(key_pair):
    _, _, public_path = key_pair
    stated = json.loads(public_path.read_text())["public_key"]
    _rewrite(public_path, public_key=_second_spelling(stated))
    _key_error(load_public_key, public_path, "corrupt: public_key is not 32 bytes of base64")


def test_mismatched_public_key_is_refused(key_pair):
    _, private_path, _ = key_pair
    other = SigningKey("alice", b"\x07" * 32).public.b64
    _rewrite(private_path, public_key=other)
    _key_error(
        load_private_key, private_path, "corrupt: public key does not match the private seed"
    )


def test_public_file_with_wrong_key_id_is_refused(key_pair):
    _, _, public_path = key_pair
    _rewrite(public_path, key_id="0000000000000000")
    _key_error(load_public_key, public_path, "corrupt: key_id does not match the public key")


def test_wrong_type_is_refused(key_pair):
    _, private_path, _ = key_pair
    _rewrite(private_path, type="sealtrail.rsa.private")
    _key_error(load_private_key, private_path, "not a sealtrail key file (no sealtrail key type)")


def test_json_that_is_not_an_object_is_refused(tmp_path: Path):
    path = tmp_path / "list.key"
    path.write_text("[1, 2]")
    _key_error(load_private_key, path, "not a sealtrail key file (no sealtrail key type)")


def test_unsupported_version_is_refused(key_pair):
    _, private_path, _ = key_pair
    _rewrite(private_path, version=2)
    _key_error(load_private_key, private_path, "unsupported key file version 2")


def test_bad_key_name_in_file_is_refused(key_pair):
    _, private_path, _ = key_pair
    _rewrite(private_path, name="has space")
    _key_error(load_private_key, private_path, "corrupt: bad or missing key name")


def test_directory_given_is_refused(tmp_path: Path):
    _key_error(load_private_key, tmp_path, "is a directory, not a key file")


def test_a_device_given_is_refused_unread():
    _key_error(load_private_key, Path("/dev/zero"), "is a character device, not a key file")
    _key_error(load_public_key, Path("/dev/null"), "is a character device, not a key file")


def test_missing_file_is_refused(tmp_path: Path):
    _key_error(load_public_key, tmp_path / "absent.pub", "no such file")


def test_oversized_file_is_refused(tmp_path: Path):
    path = tmp_path / "big.key"
    path.write_bytes(b" " * (MAX_KEY_FILE_BYTES + 1))
    _key_error(load_private_key, path, "too large to be a key file")


# --- names, ids, signing ----------------------------------------------------------------------


def test_key_names():
    assert check_key_name("log.example-1@site") == "log.example-1@site"
    for bad in ("", "has space", "a+b", "-leading", "x" * 65, "caf\u00e9"):
        with pytest.raises(UsageError, match="is not allowed"):
            check_key_name(bad)


def test_key_id_is_first_8_bytes_of_sha256_hex():
    key = SigningKey("alice", SEED)
    assert key.key_id == key_id_of(key.public.raw)
    assert key.key_id == hashlib.sha256(key.public.raw).hexdigest()[:16]


def test_signing_key_repr_hides_the_seed():
    key = SigningKey("alice", SEED)
    assert SEED.hex() not in repr(key)
    assert base64.b64encode(SEED).decode() not in repr(key)
    assert "alice" in repr(key)


def test_signature_of_wrong_length_does_not_verify():
    key = SigningKey("alice", SEED)
    sig = key.sign(b"m")
    assert key.public.verify(b"m", sig)
    assert not key.public.verify(b"m", sig[:63])
    assert not key.public.verify(b"m", sig + b"\x00")
    assert not key.public.verify(b"n", sig)


# --- Wycheproof Ed25519 -----------------------------------------------------------------------


def _wycheproof_ids() -> list[str]:
    path = vectors_dir() / "ed25519" / "ed25519_test.json"
    if not path.exists():
        return [ABSENT]
    data = json.loads(path.read_text())
    return [f"tc{t['tcId']}-{t['result']}" for g in data["testGroups"] for t in g["tests"]]


_WYCHEPROOF: dict[int, tuple[str, dict]] = {}


def _wycheproof_case(tc_id: int) -> tuple[str, dict]:
    if not _WYCHEPROOF:
        data = json.loads(vector_path("ed25519/ed25519_test.json").read_text())
        for group in data["testGroups"]:
            for test in group["tests"]:
                _WYCHEPROOF[test["tcId"]] = (group["publicKey"]["pk"], test)
    return _WYCHEPROOF[tc_id]


@pytest.mark.parametrize("case", _wycheproof_ids())
def test_wycheproof_ed25519(case: str):
    vector_path("ed25519/ed25519_test.json")
    pk_hex, test = _wycheproof_case(int(case[2:].split("-")[0]))
    public = PublicKey("wycheproof", bytes.fromhex(pk_hex))
    ok = public.verify(bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
    if test["result"] == "valid":
        assert ok, test["comment"]
    elif test["result"] == "invalid":
        assert not ok, test["comment"]


def test_wycheproof_file_has_both_outcomes():
    data = json.loads(vector_path("ed25519/ed25519_test.json").read_text())
    results = {t["result"] for g in data["testGroups"] for t in g["tests"]}
    assert {"valid", "invalid"} <= results
    assert len(_wycheproof_ids()) == data["numberOfTests"]


def test_large_message_path_signs_and_verifies_as_pynacl_does():
    """Messages of 1 MiB or more go straight to libsodium (no PyNaCl copies): same results."""
    import nacl.signing

    from sealtrail.custody import keys as keys_module

    key = SigningKey("alice", b"\x11" * 32)
    message = os.urandom(keys_module._LARGE_MESSAGE + 17)
    signature = key.sign(message)
    assert signature == nacl.signing.SigningKey(b"\x11" * 32).sign(message).signature
    assert key.public.verify(message, signature)
    tampered = bytearray(message)
    tampered[-1] ^= 1
    assert not key.public.verify(bytes(tampered), signature)
    assert not key.public.verify(message, signature[:63] + bytes([signature[63] ^ 1]))
    other = SigningKey("bob", b"\x22" * 32).public
    assert not other.verify(message, signature)
