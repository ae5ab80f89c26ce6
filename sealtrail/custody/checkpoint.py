"""Checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519 signatures only.

A signed note is the note text (the body), one blank line, then signature lines:

    example.org/ledger            <- origin: names the log, so a checkpoint of one log
    42                               cannot be replayed as another's
    <base64 32-byte root>
    [extension lines]
                                  <- exactly one blank line
    — <key name> <base64(4-byte note key id || 64-byte Ed25519 signature over the body)>

The signature covers the body bytes exactly, up to and including its last newline. The note key
id (``SHA-256(name || 0x0A || 0x01 || public key)[:4]``) is only a hint for finding the key:
the verifier must already trust the full public key.

Order of checks in ``open_note`` (each failure raises ``CheckpointInvalid`` naming it):
    1. size and encoding: not empty, at most MAX_NOTE_BYTES, valid UTF-8, no control
       characters but newline (Unicode category Cc: U+0000-U+001F and U+007F-U+009F; so no CR:
       CRLF line endings are not the signed bytes), ends with
       a newline. These come first so that every later check sees one unambiguous text.
    2. shape: the last blank line splits body from signatures; the body is non-empty and does
       not itself end with a blank line (exactly one blank line separates them).
    3. signature lines: at least one, at most MAX_SIGNATURES, each ``— name base64`` with a
       valid key name and strict base64 of at least 5 bytes. Anything else after the blank
       line (trailing junk) rejects the note: there is no unsigned region to hide text in.
    4. signatures: one whose (name, key id) matches no trusted key is ignored (other parties,
       e.g. witnesses, may cosign); one that matches a trusted key must verify, or the whole
       note is rejected (it was tampered with or forged); at least one trusted key must have
       signed.
``parse_and_verify_checkpoint`` then parses the body (``parse_checkpoint_body``): origin
non-empty, size in canonical decimal within 0..2**63-1, root strict base64 of 32 bytes,
extension lines non-empty. Signatures are checked before the body is interpreted, so nothing
unsigned is ever parsed as a checkpoint.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sealtrail.custody.canonical import NotCanonicalError, strict_b64decode
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.errors import CheckpointInvalid

MAX_TREE_SIZE = 2**63 - 1
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
ROOT_SIZE = 32
SIG_PREFIX = "\u2014 "  # EM DASH, space
NOTE_KEY_ID_SIZE = 4
ED25519_SIG_SIZE = 64

_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _strict_b64decode(text: str) -> bytes | None:
    """Decode standard padded base64, or None if ``text`` is not its one canonical spelling."""
    try:
        return strict_b64decode(text)
    except NotCanonicalError:
        return None


def _valid_key_name(name: str) -> bool:
    """C2SP signed-note key names: non-empty, no whitespace (Unicode spaces too), no '+'."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog checkpoint: the log's origin, its size and its root hash.

    Construction checks the same rules the parser enforces, so a Checkpoint always has a body
    that parses back to itself.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for label, line in (("origin", self.origin), *(("extension", e) for e in self.extensions)):
            if not line or "\n" in line or _CONTROL_RE.search(line):
                raise ValueError(f"checkpoint {label} {line!r} must be one non-empty line")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size} is outside 0..2**63-1")
        if len(self.root) != ROOT_SIZE:
            raise ValueError(f"checkpoint root is {len(self.root)} bytes, expected {ROOT_SIZE}")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root and extension lines, each ending in \\n."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return "".join(line + "\n" for line in lines).encode("utf-8")


def signature_line(body: bytes, key: SigningKey) -> bytes:
    """One C2SP signature line for ``body``: ``— name base64(key id || signature)\\n``."""
    blob = key.public.note_key_id + key.sign(body)
    return f"{SIG_PREFIX}{key.name} {base64.b64encode(blob).decode('ascii')}\n".encode()


def sign_note(body: bytes, key: SigningKey) -> bytes:
    """A signed note of ``body`` (non-empty, ends with a newline) by ``key``."""
    if not body or not body.endswith(b"\n") or body.endswith(b"\n\n") or body == b"\n":
        raise ValueError("note text must be non-empty and end with exactly one newline")
    return body + b"\n" + signature_line(body, key)


def sign_checkpoint(cp: Checkpoint, key: SigningKey) -> bytes:
    """The signed note text of ``cp``, signed by ``key``."""
    return sign_note(cp.body(), key)


def public_key_from_note_verifier(verifier: str) -> PublicKey:
    """Parse a C2SP verifier key ``name+hex(key id)+base64(0x01 || key)`` (Ed25519 only).

    The key id written in the string must be the one the name and key imply.
    """
    parts = verifier.split("+", 2)  # the base64 key may itself contain '+'
    if len(parts) != 3:
        raise ValueError("verifier key must be name+keyid+key")
    name, key_id_hex, b64 = parts
    raw = _strict_b64decode(b64)
    if not _valid_key_name(name) or raw is None or len(raw) != 33 or raw[0] != 1:
        raise ValueError("verifier key is not an Ed25519 key with a valid name")
    public = PublicKey(name, raw[1:])
    if public.note_key_id.hex() != key_id_hex:
        raise ValueError(f"verifier key id {key_id_hex} does not match the key")
    return public


def _check_text(text: bytes, where: str) -> str:
    if not text:
        raise CheckpointInvalid(where, "empty note")
    if len(text) > MAX_NOTE_BYTES:
        raise CheckpointInvalid(
            where,
            f"note is larger than {MAX_NOTE_BYTES} bytes",
            expected=MAX_NOTE_BYTES,
            observed=len(text),
        )
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointInvalid(where, f"note is not valid UTF-8 (byte {exc.start})") from None
    if "\r" in decoded:
        raise CheckpointInvalid(where, "note contains a carriage return (CRLF line endings?)")
    bad = _CONTROL_RE.search(decoded)
    if bad:
        line = decoded.count("\n", 0, bad.start()) + 1
        raise CheckpointInvalid(where, f"control character U+{ord(bad.group()):04X} on line {line}")
    if not decoded.endswith("\n"):
        raise CheckpointInvalid(where, "note does not end with a newline")
    return decoded


def _parse_signature_lines(block: str, where: str) -> list[tuple[str, bytes, bytes]]:
    lines = block.split("\n")[:-1]  # the block ends with a newline (checked already)
    if not lines:
        raise CheckpointInvalid(where, "no signature lines after the blank line")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointInvalid(
            where,
            f"more than {MAX_SIGNATURES} signature lines",
            expected=MAX_SIGNATURES,
            observed=len(lines),
        )
    parsed = []
    for number, line in enumerate(lines, start=1):
        fields = line[len(SIG_PREFIX) :].split(" ") if line.startswith(SIG_PREFIX) else []
        if len(fields) != 2:
            raise CheckpointInvalid(
                where, f"line {number} after the blank line is not a signature line: {line!r}"
            )
        name, b64 = fields
        if not _valid_key_name(name):
            raise CheckpointInvalid(where, f"signature line {number}: bad key name {name!r}")
        blob = _strict_b64decode(b64)
        if blob is None or len(blob) <= NOTE_KEY_ID_SIZE:
            raise CheckpointInvalid(
                where,
                f"signature line {number} ({name}): signature is not strict base64 of "
                "a key id and a signature",
            )
        parsed.append((name, blob[:NOTE_KEY_ID_SIZE], blob[NOTE_KEY_ID_SIZE:]))
    return parsed


def open_note(
    text: bytes, trusted: Iterable[PublicKey], *, where: str
) -> tuple[bytes, list[PublicKey]]:
    """Check a signed note; return its body and the trusted keys that signed it.

    Follows steps 1-4 of the module docstring; raises ``CheckpointInvalid(where, ...)``.
    The keys are returned once each, in the order of their first signature.
    """
    decoded = _check_text(text, where)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid(where, "no blank line between the note text and the signatures")
    body_text, block = decoded[: split + 1], decoded[split + 2 :]
    if body_text == "\n" or split == 0:
        raise CheckpointInvalid(where, "note text is empty")
    if body_text.endswith("\n\n"):
        raise CheckpointInvalid(where, "more than one blank line before the signatures")
    signatures = _parse_signature_lines(block, where)

    # The (name, key id) hint only selects candidates; a 4-byte id can collide, so a
    # signature is good if any trusted key with that hint verifies it.
    by_hint: dict[tuple[str, bytes], list[PublicKey]] = {}
    for key in trusted:
        by_hint.setdefault((key.name, key.note_key_id), []).append(key)
    body = body_text.encode("utf-8")
    signers: list[PublicKey] = []
    for number, (name, key_id, sig) in enumerate(signatures, start=1):
        candidates = by_hint.get((name, key_id))
        if not candidates:
            continue  # not ours to judge: an unknown cosigner, or a key we do not trust
        good = [k for k in candidates if len(sig) == ED25519_SIG_SIZE and k.verify(body, sig)]
        if not good:
            raise CheckpointInvalid(
                where,
                f"signature line {number} by trusted key {name} ({key_id.hex()}) does not verify",
            )
        key = good[0]
        if key not in signers:
            signers.append(key)
    if not signers:
        names = ", ".join(sorted({name for name, _, _ in signatures}))
        raise CheckpointInvalid(where, f"no signature by a trusted key (signed by: {names})")
    return body, signers


def parse_checkpoint_body(body: bytes, *, where: str) -> Checkpoint:
    """Parse a checkpoint body (the note text). Does not check any signature."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointInvalid(where, "checkpoint body is not valid UTF-8") from None
    if not text.endswith("\n"):
        raise CheckpointInvalid(where, "checkpoint body does not end with a newline")
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointInvalid(
            where,
            "checkpoint body needs origin, tree size and root hash lines",
            expected=3,
            observed=len(lines),
        )
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CheckpointInvalid(where, f"checkpoint line {number} is empty")
        bad = _CONTROL_RE.search(line)
        if bad:
            raise CheckpointInvalid(
                where, f"control character U+{ord(bad.group()):04X} on line {number}"
            )
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text):
        if size_text.isascii() and size_text.isdigit():
            raise CheckpointInvalid(where, f"tree size {size_text!r} has leading zeros")
        raise CheckpointInvalid(where, f"tree size {size_text!r} is not a decimal number")
    if len(size_text) > 19 or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointInvalid(where, f"tree size {size_text} is larger than 2**63-1")
    root = _strict_b64decode(root_text)
    if root is None:
        raise CheckpointInvalid(where, f"root hash {root_text!r} is not strict base64")
    if len(root) != ROOT_SIZE:
        raise CheckpointInvalid(
            where,
            f"root hash is {len(root)} bytes, not {ROOT_SIZE}",
            expected=ROOT_SIZE,
            observed=len(root),
        )
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def parse_and_verify_checkpoint(
    text: bytes, trusted: Iterable[PublicKey], *, where: str
) -> tuple[Checkpoint, list[PublicKey]]:
    """Verify a signed checkpoint note and parse it.

    Returns the checkpoint and the trusted keys whose good signatures it carries (at least
    one). Raises ``CheckpointInvalid(where, message)`` otherwise; see the module docstring.
    """
    body, signers = open_note(text, trusted, where=where)
    return parse_checkpoint_body(body, where=where), signers
