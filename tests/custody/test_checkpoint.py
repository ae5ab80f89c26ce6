"""Tests for sealtrail/custody/checkpoint.py: known answer, round trips and attacks."""

from __future__ import annotations

import base64
import json
import re

import pytest

from sealtrail.custody.checkpoint import (
    Checkpoint,
    open_note,
    parse_and_verify_checkpoint,
    parse_checkpoint_body,
    public_key_from_note_verifier,
    sign_checkpoint,
    sign_note,
    signature_line,
)
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.merkle import leaf_hash
from sealtrail.errors import CheckpointInvalid
from tests.shared_data import vector_path

WHERE = "checkpoint test.cp"
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
LOG_KEY = SigningKey("log.example", b"\x01" * 32)
WITNESS_KEY = SigningKey("witness", b"\x02" * 32)
OTHER_KEY = SigningKey("other", b"\x03" * 32)
GOOD_CP = Checkpoint("example.org/ledger", 42, ROOT)


def _signed(body: str | bytes, *keys: SigningKey) -> bytes:
    """Sign ``body`` as given (even a malformed one), so only the body can be at fault."""
    raw = body.encode() if isinstance(body, str) else body
    return raw + b"\n" + b"".join(signature_line(raw, k) for k in keys)


def _reject(text: bytes, fragment: str, trusted=(LOG_KEY.public,)) -> CheckpointInvalid:
    with pytest.raises(CheckpointInvalid) as info:
        parse_and_verify_checkpoint(text, trusted, where=WHERE)
    assert type(info.value) is CheckpointInvalid
    assert info.value.where == WHERE
    assert fragment in info.value.message, info.value.message
    return info.value


# --- known answer: C2SP signed-note (golang/mod sumdb/note) -----------------------------------


def _known_answer() -> dict:
    return json.loads(vector_path("signed-note.json").read_text())


def _known_key(data: dict) -> SigningKey:
    # PRIVATE+KEY+name+keyid+base64(0x01 || seed)
    _, _, name, key_id, b64 = data["private_key"].split("+", 4)
    raw = base64.b64decode(b64)
    assert raw[0] == 1
    return SigningKey(name, raw[1:])


def test_known_answer_signature_line_and_key_id():
    data = _known_answer()
    key = _known_key(data)
    body = data["note_text"].encode()
    assert key.public.note_key_id.hex() == data["key_id_hex"]
    assert signature_line(body, key).decode() == data["signature_line"]
    assert sign_note(body, key).decode() == data["signed_note"]


def test_known_answer_verifier_key_parses_to_the_signing_key():
    data = _known_answer()
    public = public_key_from_note_verifier(data["verifier_key"])
    assert public == _known_key(data).public
    assert public.note_verifier == data["verifier_key"]


def test_known_answer_note_opens_with_its_key():
    data = _known_answer()
    public = public_key_from_note_verifier(data["verifier_key"])
    body, signers = open_note(data["signed_note"].encode(), [public], where=WHERE)
    assert body == data["note_text"].encode()
    assert signers == [public]


def test_known_answer_note_is_not_a_checkpoint():
    data = _known_answer()
    public = public_key_from_note_verifier(data["verifier_key"])
    with pytest.raises(CheckpointInvalid, match="needs origin, tree size and root hash lines"):
        parse_and_verify_checkpoint(data["signed_note"].encode(), [public], where=WHERE)


def test_known_answer_tree_note_round_trips():
    data = _known_answer()
    key = _known_key(data)
    text = data["tree_note_example"]["text"].encode()
    cp, signers = parse_and_verify_checkpoint(sign_note(text, key), [key.public], where=WHERE)
    assert cp == Checkpoint("go.sum database tree", 123456789012, leaf_hash(b"hello world"))
    assert cp.body() == text
    assert signers == [key.public]


def test_verifier_key_with_wrong_key_id_is_refused():
    verifier = LOG_KEY.public.note_verifier
    name, _, b64 = verifier.split("+")
    with pytest.raises(ValueError, match="does not match the key"):
        public_key_from_note_verifier(f"{name}+00000000+{b64}")


# --- round trips ------------------------------------------------------------------------------


def test_checkpoint_body_format():
    assert GOOD_CP.body() == f"example.org/ledger\n42\n{ROOT_B64}\n".encode()
    cp = Checkpoint("o", 0, ROOT, ("ext one", "ext two"))
    assert cp.body() == f"o\n0\n{ROOT_B64}\next one\next two\n".encode()


def test_signed_checkpoint_layout():
    text = sign_checkpoint(GOOD_CP, LOG_KEY).decode()
    body, sig = text.split("\n\n")
    assert body + "\n" == GOOD_CP.body().decode()
    assert sig.startswith("\u2014 log.example ")
    blob = base64.b64decode(sig.split(" ")[2])
    assert blob[:4] == LOG_KEY.public.note_key_id
    assert LOG_KEY.public.verify(GOOD_CP.body(), blob[4:])


def test_signed_checkpoint_round_trips_with_extensions():
    cp = Checkpoint("example.org/ledger", 2**63 - 1, ROOT, ("a b c", "\u00e9t\u00e9"))
    parsed, signers = parse_and_verify_checkpoint(
        sign_checkpoint(cp, LOG_KEY), [LOG_KEY.public], where=WHERE
    )
    assert parsed == cp
    assert signers == [LOG_KEY.public]


def test_size_zero_is_accepted():
    cp = Checkpoint("o", 0, ROOT)
    assert (
        parse_and_verify_checkpoint(sign_checkpoint(cp, LOG_KEY), [LOG_KEY.public], where=WHERE)[0]
        == cp
    )


def test_untrusted_cosignature_is_ignored():
    text = _signed(GOOD_CP.body(), WITNESS_KEY, LOG_KEY)
    cp, signers = parse_and_verify_checkpoint(text, [LOG_KEY.public], where=WHERE)
    assert cp == GOOD_CP
    assert signers == [LOG_KEY.public]


def test_all_trusted_signers_are_returned_once_each():
    text = _signed(GOOD_CP.body(), WITNESS_KEY, LOG_KEY, WITNESS_KEY)
    _, signers = parse_and_verify_checkpoint(
        text, [LOG_KEY.public, WITNESS_KEY.public, OTHER_KEY.public], where=WHERE
    )
    assert signers == [WITNESS_KEY.public, LOG_KEY.public]


def test_checkpoint_constructor_refuses_what_the_parser_refuses():
    with pytest.raises(ValueError, match="one non-empty line"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(ValueError, match="one non-empty line"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(ValueError, match="one non-empty line"):
        Checkpoint("o", 1, ROOT, ("",))
    with pytest.raises(ValueError, match="outside 0..2"):
        Checkpoint("o", 2**63, ROOT)
    with pytest.raises(ValueError, match="outside 0..2"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(ValueError, match="31 bytes"):
        Checkpoint("o", 1, ROOT[:31])


def test_sign_note_refuses_a_body_that_cannot_be_opened():
    for body in (b"", b"no newline", b"two\n\n", b"\n"):
        with pytest.raises(ValueError, match="exactly one newline"):
            sign_note(body, LOG_KEY)


# --- malformed checkpoints, named after the attack --------------------------------------------


def test_size_with_leading_zeros_is_rejected():
    _reject(_signed(f"o\n042\n{ROOT_B64}\n", LOG_KEY), "tree size '042' has leading zeros")
    _reject(_signed(f"o\n00\n{ROOT_B64}\n", LOG_KEY), "tree size '00' has leading zeros")


@pytest.mark.parametrize("size", ["+42", "-1", " 42", "42 ", "4_2", "0x2a", "\u0664\u0662", ""])
def test_size_that_is_not_plain_decimal_is_rejected(size: str):
    fragment = "line 2 is empty" if size == "" else "is not a decimal number"
    _reject(_signed(f"o\n{size}\n{ROOT_B64}\n", LOG_KEY), fragment)


def test_size_over_2_63_minus_1_is_rejected():
    _reject(
        _signed(f"o\n{2**63}\n{ROOT_B64}\n", LOG_KEY),
        "tree size 9223372036854775808 is larger than 2**63-1",
    )
    _reject(_signed(f"o\n{'9' * 5000}\n{ROOT_B64}\n", LOG_KEY), "is larger than 2**63-1")


def test_bad_base64_root_is_rejected():
    _reject(_signed("o\n1\nnot*base64!\n", LOG_KEY), "root hash 'not*base64!' is not strict base64")


def test_root_without_padding_is_rejected():
    _reject(_signed(f"o\n1\n{ROOT_B64.rstrip('=')}\n", LOG_KEY), "is not strict base64")


def test_root_with_nonzero_padding_bits_is_rejected():
    # Same 32 bytes under a lenient decoder, but a second spelling of the signed text.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(ROOT_B64[-2]) | 1]  # set one of the two unused bits
    malleable = ROOT_B64[:-2] + last + "="
    assert base64.b64decode(malleable) == ROOT
    _reject(_signed(f"o\n1\n{malleable}\n", LOG_KEY), "is not strict base64")


def test_root_of_31_bytes_is_rejected():
    short = base64.b64encode(ROOT[:31]).decode()
    error = _reject(_signed(f"o\n1\n{short}\n", LOG_KEY), "root hash is 31 bytes, not 32")
    assert (error.expected, error.observed) == (32, 31)


def test_control_character_in_origin_is_rejected():
    _reject(_signed(f"exa\x01mple\n1\n{ROOT_B64}\n", LOG_KEY), "control character U+0001 on line 1")
    _reject(_signed(f"exa\tmple\n1\n{ROOT_B64}\n", LOG_KEY), "control character U+0009 on line 1")


def test_control_character_in_body_is_rejected_by_the_body_parser_too():
    with pytest.raises(CheckpointInvalid, match=re.escape("control character U+007F on line 1")):
        parse_checkpoint_body(f"exa\x7fmple\n1\n{ROOT_B64}\n".encode(), where=WHERE)


def test_empty_origin_is_rejected():
    _reject(_signed(f"\n1\n{ROOT_B64}\n", LOG_KEY), "checkpoint line 1 is empty")


def test_missing_root_line_is_rejected():
    error = _reject(_signed("o\n1\n", LOG_KEY), "needs origin, tree size and root hash lines")
    assert (error.expected, error.observed) == (3, 2)


def test_missing_blank_line_is_rejected():
    body = GOOD_CP.body()
    _reject(body + signature_line(body, LOG_KEY), "no blank line between the note text")


def test_two_blank_lines_before_signatures_are_rejected():
    body = GOOD_CP.body()
    _reject(
        body + b"\n\n" + signature_line(body, LOG_KEY),
        "more than one blank line before the signatures",
    )


def test_trailing_junk_after_signatures_is_rejected():
    good = sign_checkpoint(GOOD_CP, LOG_KEY)
    _reject(good + b"junk\n", "line 2 after the blank line is not a signature line: 'junk'")


def test_trailing_junk_without_newline_is_rejected():
    _reject(sign_checkpoint(GOOD_CP, LOG_KEY) + b"junk", "note does not end with a newline")


def test_trailing_paragraph_after_signatures_is_rejected():
    good = sign_checkpoint(GOOD_CP, LOG_KEY)
    _reject(good + b"\nmore text\n", "line 1 after the blank line is not a signature line")


def test_trailing_blank_line_after_signatures_is_rejected():
    # The last blank line now splits after the signature, which is left inside the body.
    _reject(sign_checkpoint(GOOD_CP, LOG_KEY) + b"\n", "no signature lines after the blank line")


def test_signature_line_without_em_dash_is_rejected():
    text = sign_checkpoint(GOOD_CP, LOG_KEY).replace("\u2014".encode(), b"-")
    _reject(text, "line 1 after the blank line is not a signature line")


def test_signature_with_bad_base64_is_rejected():
    text = GOOD_CP.body() + "\n\u2014 log.example abc*\n".encode()
    _reject(text, "signature line 1 (log.example): signature is not strict base64")


def test_signature_with_key_name_containing_plus_is_rejected():
    text = GOOD_CP.body() + "\n\u2014 a+b AAAAAAA=\n".encode()
    _reject(text, "signature line 1: bad key name 'a+b'")


def test_signature_by_untrusted_key_only_is_rejected():
    _reject(_signed(GOOD_CP.body(), OTHER_KEY), "no signature by a trusted key (signed by: other)")


def test_signature_with_trusted_key_id_but_other_name_is_not_trusted():
    body = GOOD_CP.body()
    forged = signature_line(body, LOG_KEY).replace(b"log.example", b"impostor")
    _reject(body + b"\n" + forged, "no signature by a trusted key (signed by: impostor)")


def test_good_and_bad_signature_from_trusted_key_is_rejected():
    body = GOOD_CP.body()
    bad = signature_line(Checkpoint("example.org/ledger", 41, ROOT).body(), LOG_KEY)
    _reject(
        body + b"\n" + signature_line(body, LOG_KEY) + bad,
        "signature line 2 by trusted key log.example",
    )
    _reject(
        body + b"\n" + bad + signature_line(body, LOG_KEY),
        "signature line 1 by trusted key log.example",
    )


def test_bad_trusted_signature_rejects_even_with_another_trusted_good_one():
    body = GOOD_CP.body()
    bad = signature_line(b"other body\n", WITNESS_KEY)
    with pytest.raises(CheckpointInvalid, match="witness .* does not verify"):
        parse_and_verify_checkpoint(
            body + b"\n" + signature_line(body, LOG_KEY) + bad,
            [LOG_KEY.public, WITNESS_KEY.public],
            where=WHERE,
        )


def test_tree_size_edited_after_signing_is_rejected():
    text = sign_checkpoint(GOOD_CP, LOG_KEY).replace(b"\n42\n", b"\n43\n")
    _reject(text, "signature line 1 by trusted key log.example (")


def test_truncated_signature_from_trusted_key_is_rejected():
    body = GOOD_CP.body()
    blob = LOG_KEY.public.note_key_id + LOG_KEY.sign(body)[:63]
    line = f"\u2014 log.example {base64.b64encode(blob).decode()}\n".encode()
    _reject(body + b"\n" + line, "does not verify")


def test_crlf_line_endings_are_rejected():
    text = sign_checkpoint(GOOD_CP, LOG_KEY).replace(b"\n", b"\r\n")
    _reject(text, "carriage return (CRLF line endings?)")


def test_empty_note_is_rejected():
    _reject(b"", "empty note")


def test_empty_note_text_is_rejected():
    _reject(b"\n\n" + signature_line(b"\n", LOG_KEY), "note text is empty")


def test_invalid_utf8_is_rejected():
    _reject(b"o\xff\n" + sign_checkpoint(GOOD_CP, LOG_KEY), "not valid UTF-8 (byte 1)")


def test_too_many_signature_lines_are_rejected():
    body = GOOD_CP.body()
    text = body + b"\n" + signature_line(body, OTHER_KEY) * 100 + signature_line(body, LOG_KEY)
    error = _reject(text, "more than 100 signature lines")
    assert error.observed == 101


def test_one_hundred_signature_lines_are_accepted():
    body = GOOD_CP.body()
    text = body + b"\n" + signature_line(body, OTHER_KEY) * 99 + signature_line(body, LOG_KEY)
    assert parse_and_verify_checkpoint(text, [LOG_KEY.public], where=WHERE)[0] == GOOD_CP


def test_no_trusted_keys_at_all_is_rejected():
    _reject(sign_checkpoint(GOOD_CP, LOG_KEY), "no signature by a trusted key", trusted=())
