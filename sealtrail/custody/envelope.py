"""DSSE envelopes: a payload signed together with its type.

Envelope JSON: ``{"payloadType": str, "payload": base64(payload bytes),
"signatures": [{"keyid": str, "sig": base64(64 bytes)}]}``; each signature is Ed25519 over
``PAE(payloadType, payload)``. The verifier checks the signature over the exact payload bytes
before it parses them, so no canonical form of the payload is needed to verify it.

Checks, in order: the envelope is canonical JSON (docs/bundle-format.md section 3) with exactly
the keys ``payload``, ``payloadType``, ``signatures`` and, in each signature, ``keyid`` and
``sig``; every base64 value (``payload`` and every ``sig``, trusted key or not) is strict
(``strict_b64decode``), so no verifier reads other bytes out of it than this one; its payload
type is the one the caller expects (a ledger entry cannot be replayed as a manifest); at least
one signature is by a trusted key and verifies; any signature that names a trusted key id but
fails to verify rejects the envelope (a tampered signature is never silently outvoted by another).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sealtrail.custody.canonical import (
    NotCanonicalError,
    canonical_json,
    pae,
    parse_canonical_json,
    strict_b64decode,
    strict_b64decode_buffer,
)
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.errors import ManifestInvalid, SignatureInvalid, UntrustedKey


@dataclass(frozen=True, slots=True)
class VerifiedPayload:
    """A payload whose signature verified, with the key that signed it."""

    payload: bytes
    signer: PublicKey


def sign_envelope(payload_type: str, payload: bytes, key: SigningKey) -> bytes:
    """Return the envelope bytes (canonical JSON) carrying ``payload`` signed by ``key``."""
    return b"".join(sign_envelope_parts(payload_type, payload, key))


def sign_envelope_parts(payload_type: str, payload: bytes, key: SigningKey) -> list[bytes]:
    """`sign_envelope`'s bytes in parts whose concatenation is the envelope, so a writer can
    store a manifest of gigabytes without joining them into one more copy."""
    signature = key.sign(pae(payload_type, payload))
    # ``payload`` sorts first, and base64 text is a JSON string as it is (no escapes), so the
    # canonical envelope is this prefix, the base64 bytes, then the canonical rest minus its
    # "{": built without a str copy of a manifest that can be gigabytes long.
    rest = canonical_json(
        {
            "payloadType": payload_type,
            "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
        }
    )
    return [_PAYLOAD_PREFIX, base64.b64encode(payload), b'",', rest[1:]]


_ENVELOPE_KEYS = frozenset({"payload", "payloadType", "signatures"})
_PAYLOAD_PREFIX = b'{"payload":"'
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_SIGNATURE_KEYS = frozenset({"keyid", "sig"})


def _b64(value: object, where: str, field: str) -> bytes:
    try:
        if isinstance(value, memoryview):
            return strict_b64decode_buffer(value)
        return strict_b64decode(value)
    except NotCanonicalError as exc:
        raise ManifestInvalid(where, f"envelope {field} is not strict base64: {exc}") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, where: str) -> Envelope:
        """Parse and check an envelope (the checks of the module docstring).

        An envelope that begins ``{"payload":"`` followed by base64 text and ``",`` is taken
        apart there: the base64 is decoded straight from ``data`` and the rest is parsed as
        ``{`` + rest. That is the same verdict as parsing the whole (base64 text needs no JSON
        escape, and ``payload`` sorts before the other keys, so the whole is canonical exactly
        when the rest is), without a str copy of the payload and a second serialisation of it:
        a manifest envelope can be gigabytes. Any other shape is parsed whole, for its error.
        """
        view = memoryview(data).cast("B")
        start = len(_PAYLOAD_PREFIX)
        if view[:start] == _PAYLOAD_PREFIX:
            end = (bytes(data) if isinstance(data, memoryview) else data).find(b'"', start)
            if (end > 0 and view[end + 1:end + 2] == b","
                    and _BASE64_TEXT.fullmatch(view[start:end])):
                try:
                    head = parse_canonical_json(b"{" + bytes(view[end + 2:]))
                except NotCanonicalError:
                    head = None  # parsed whole below, for the error it gives there
                if (isinstance(head, dict) and set(head) == _ENVELOPE_KEYS - {"payload"}
                        and isinstance(head["payloadType"], str)):
                    signatures = cls._signatures(head, where)
                    payload = _b64(view[start:end], where, "payload")
                    return cls(head["payloadType"], payload, signatures)
        obj = cls._parse_obj(view, where)
        signatures = cls._signatures(obj, where)
        return cls(obj["payloadType"], _b64(obj.get("payload"), where, "payload"), signatures)

    @staticmethod
    def _parse_obj(data: bytes | memoryview, where: str) -> dict:
        try:
            obj = parse_canonical_json(data)
        except NotCanonicalError as exc:
            raise ManifestInvalid(where, f"signature envelope is not canonical JSON: {exc}") \
                from None
        if not isinstance(obj, dict) or set(obj) != _ENVELOPE_KEYS:
            raise ManifestInvalid(
                where, "signature envelope does not have exactly its keys",
                expected=sorted(_ENVELOPE_KEYS),
                observed=sorted(obj) if isinstance(obj, dict) else type(obj).__name__,
            )
        if not isinstance(obj["payloadType"], str):
            raise ManifestInvalid(where, "signature envelope has no payloadType")
        return obj

    @staticmethod
    def _signatures(obj: dict, where: str) -> tuple[tuple[str, bytes], ...]:
        sigs = obj["signatures"]
        if not isinstance(sigs, list) or not sigs:
            raise ManifestInvalid(where, "signature envelope has no signatures")
        parsed = []
        for i, item in enumerate(sigs):
            if (not isinstance(item, dict) or set(item) != _SIGNATURE_KEYS
                    or not isinstance(item["keyid"], str)):
                raise ManifestInvalid(where, f"signature envelope has a malformed signature {i}")
            parsed.append((item["keyid"], _b64(item["sig"], where, f"signature {i} sig")))
        return tuple(parsed)

    def signer_key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self.signatures]

    def verify(
        self, expected_type: str, trusted: Iterable[PublicKey], where: str
    ) -> VerifiedPayload:
        """Return the payload if a trusted key signed it; raise otherwise (see module doc)."""
        if self.payload_type != expected_type:
            raise ManifestInvalid(
                where, "wrong payload type", expected=expected_type, observed=self.payload_type
            )
        by_id = {key.key_id: key for key in trusted}
        message = pae(self.payload_type, self.payload)
        good: PublicKey | None = None
        for key_id, signature in self.signatures:
            key = by_id.get(key_id)
            if key is None:
                continue
            if not key.verify(message, signature):
                raise SignatureInvalid(
                    where, f"signature by key {key_id} ({key.name}) does not verify"
                )
            good = good or key
        if good is None:
            raise UntrustedKey(
                where,
                "not signed by a trusted key",
                expected=" or ".join(sorted(by_id)) or "a trusted key",
                observed=", ".join(self.signer_key_ids()),
            )
        return VerifiedPayload(self.payload, good)
