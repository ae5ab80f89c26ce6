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
from collections.abc import Iterable
from dataclasses import dataclass

from sealtrail.custody.canonical import (
    NotCanonicalError,
    canonical_json,
    pae,
    parse_canonical_json,
    strict_b64decode,
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
    signature = key.sign(pae(payload_type, payload))
    return canonical_json(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
        }
    )


_ENVELOPE_KEYS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_KEYS = frozenset({"keyid", "sig"})


def _b64(value: object, where: str, field: str) -> bytes:
    try:
        return strict_b64decode(value)
    except NotCanonicalError as exc:
        raise ManifestInvalid(where, f"envelope {field} is not strict base64: {exc}") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, data: bytes, where: str) -> Envelope:
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
        sigs = obj["signatures"]
        if not isinstance(sigs, list) or not sigs:
            raise ManifestInvalid(where, "signature envelope has no signatures")
        parsed = []
        for i, item in enumerate(sigs):
            if (not isinstance(item, dict) or set(item) != _SIGNATURE_KEYS
                    or not isinstance(item["keyid"], str)):
                raise ManifestInvalid(where, f"signature envelope has a malformed signature {i}")
            parsed.append((item["keyid"], _b64(item["sig"], where, f"signature {i} sig")))
        return cls(obj["payloadType"], _b64(obj.get("payload"), where, "payload"), tuple(parsed))

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
