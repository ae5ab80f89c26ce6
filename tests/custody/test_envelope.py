"""DSSE envelopes: the large-payload paths give the bytes and verdicts of the plain ones."""

from __future__ import annotations

import base64

import pytest

from sealtrail.custody.canonical import canonical_json, pae
from sealtrail.custody.envelope import Envelope, sign_envelope
from sealtrail.errors import ManifestInvalid
from tests.conftest import Keyring

TYPE = "application/vnd.sealtrail.bundle-manifest.v1+json"


def _whole(payload: bytes, keyring: Keyring) -> dict:
    key = keyring.alice.key
    return {"payload": base64.b64encode(payload).decode(), "payloadType": TYPE,
            "signatures": [{"keyid": key.key_id,
                            "sig": base64.b64encode(key.sign(pae(TYPE, payload))).decode()}]}


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, (3 << 20) + 1])
def test_envelope_bytes_are_the_canonical_json_of_the_whole(keyring: Keyring, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    envelope = sign_envelope(TYPE, payload, keyring.alice.key)
    assert envelope == canonical_json(_whole(payload, keyring))
    parsed = Envelope.parse(bytearray(envelope), "t")
    assert parsed.payload == payload
    assert parsed.verify(TYPE, [keyring.alice.key.public], "t").payload == payload


def _verdict(data: bytes) -> str:
    try:
        return repr(Envelope.parse(data, "t"))
    except ManifestInvalid as exc:
        return str(exc)


def _whole_parse(data: bytes) -> str:
    """The verdict of parsing the envelope whole (the path every envelope took before)."""
    try:
        obj = Envelope._parse_obj(data, "t")  # noqa: SLF001 - the reference path
        signatures = Envelope._signatures(obj, "t")  # noqa: SLF001
        from sealtrail.custody.envelope import _b64
        return repr(Envelope(obj["payloadType"], _b64(obj["payload"], "t", "payload"),
                             signatures))
    except ManifestInvalid as exc:
        return str(exc)


def test_taking_the_payload_apart_gives_the_verdict_of_the_whole_parse(keyring: Keyring) -> None:
    good = sign_envelope(TYPE, b"{}", keyring.alice.key)
    head, tail = good.split(b'",', 1)
    cases = [
        good,
        good.replace(b'"payload":"e30="', b'"payload":"e31="'),  # non-zero pad bits
        good.replace(b'"payload":"e30="', b'"payload":"e30"'),  # missing padding
        good.replace(b'"payload":"e30="', b'"payload":"e3\\u0030="'),  # an escape
        b'{"payload":"e30=",' + good[1:],  # duplicate key
        head + b'", ' + tail,  # whitespace
        head + b'","extra":1,' + tail,
        head + b'","payloadType":1,' + tail.split(b",", 1)[1],
        head + b'"}',
        good.replace(b'"signatures":[', b'"signatures":[{"keyid":"x","sig":"QR=="},'),
        good.replace(b'"payload":"e30="', b'"payload":"QR=="').replace(b'"sig":"', b'"sig":"A'),
    ]
    for data in cases:
        assert _verdict(data) == _whole_parse(data), data
