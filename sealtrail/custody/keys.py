"""Ed25519 keys: generation, key files, key ids, signing and verification.

This is the only module that imports PyNaCl.

Key id: the first 16 hex digits (8 bytes) of SHA-256 over the raw 32-byte public key. It names
a key in ledger entries and manifests; it is a label, not a trust decision: verifiers always
compare the full public key. For C2SP signed notes (checkpoints) the note key id is different,
as that format defines it: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.

Key files are UTF-8 JSON objects:
    private: {"type": "sealtrail.ed25519.private", "version": 1, "name": ..,
              "seed": base64(32-byte seed), "public_key": base64(32 bytes)}
    public:  {"type": "sealtrail.ed25519.public", "version": 1, "name": ..,
              "public_key": base64(32 bytes), "key_id": hex}
A private file whose public key does not follow from its seed, or a public file whose key id
does not match its key, is rejected as corrupt.

Rules for key files, whoever reads them:
- A key file is a regular file. A FIFO, a device, a socket or a folder given as one is refused
  at once (it is opened without blocking and checked on the open descriptor), never read.
- A private key file open to group or others (any of mode 0077) still works, with a warning
  (`KeyFileWarning`), as ssh warns; `write_key_pair` writes it 0600 in a folder it creates 0700.
- A private key file given where a public key belongs (keys to trust) is refused: a private key
  is never handed around as if it were public. `load_key_file` reads either kind and says which.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from sealtrail.custody.canonical import (
    NotCanonicalError,
    parse_json,
    pretty_json,
    strict_b64decode,
)
from sealtrail.custody.durable import write_new_file
from sealtrail.errors import KeyFileError, UsageError

PRIVATE_TYPE = "sealtrail.ed25519.private"
PUBLIC_TYPE = "sealtrail.ed25519.public"
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
MAX_KEY_FILE_BYTES = 64 * 1024
#: What a path that is not a regular file is, for the error that refuses it.
_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


class KeyFileWarning(UserWarning):
    """A key file that works but is not kept as it should be (a private key others can read)."""


def key_id_of(public_key: bytes) -> str:
    """The sealtrail key id: hex of the first 8 bytes of SHA-256(public key)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def note_key_id_of(name: str, public_key: bytes) -> bytes:
    """The C2SP signed-note key id (4 bytes) for an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + public_key).digest()[:4]


def check_key_name(name: str) -> str:
    """Key names appear in signed notes, so they must be a single printable token."""
    if not KEY_NAME_RE.match(name):
        raise UsageError(
            f"key name {name!r} is not allowed: use 1-64 letters, digits or ._@- "
            "(starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key with the name its owner gave it."""

    name: str
    raw: bytes

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    @property
    def note_key_id(self) -> bytes:
        return note_key_id_of(self.name, self.raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @property
    def note_verifier(self) -> str:
        """The C2SP verifier-key string: ``name+hex(keyid)+base64(0x01 || key)``."""
        encoded = base64.b64encode(b"\x01" + self.raw).decode()
        return f"{self.name}+{self.note_key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message`` by this key."""
        if len(signature) != 64:
            return False
        if len(message) >= _LARGE_MESSAGE and len(self.raw) == 32:
            return _verify_large(self.raw, message, signature)
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            return False
        return True

    def to_json_obj(self) -> dict[str, object]:
        return {
            "type": PUBLIC_TYPE,
            "version": 1,
            "name": self.name,
            "public_key": self.b64,
            "key_id": self.key_id,
        }


@functools.lru_cache(maxsize=16)
def _nacl_signing_key(seed: bytes) -> nacl.signing.SigningKey:
    """Deriving the key pair from the seed costs about as much as a signature: do it once."""
    return nacl.signing.SigningKey(seed)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key (its 32-byte seed) with its name."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        check_key_name(name)
        return cls(name, bytes(nacl.signing.SigningKey.generate()))

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.name, bytes(_nacl_signing_key(self.seed).verify_key))

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        if len(message) >= _LARGE_MESSAGE:
            return _sign_large(_nacl_signing_key(self.seed), message)
        return _nacl_signing_key(self.seed).sign(message).signature

    def __repr__(self) -> str:  # never print the seed
        return f"SigningKey(name={self.name!r}, key_id={self.key_id!r})"


#: From this size on a message is verified by `_verify_large` (a manifest's PAE bytes).
_LARGE_MESSAGE = 1 << 20


def _verify_large(raw_key: bytes, message: bytes, signature: bytes) -> bool:
    """libsodium's ``crypto_sign_open`` with no output buffer: the same Ed25519 check as
    ``VerifyKey.verify``, which also allocates a copy of the message for its output and a
    second one for the result (three extra copies of a manifest of gigabytes; this makes one,
    signature + message, which the call needs)."""
    from nacl._sodium import ffi, lib  # PyNaCl's libsodium binding, as nacl.bindings uses it

    signed = signature + message
    length = ffi.new("unsigned long long *")
    return lib.crypto_sign_open(ffi.NULL, length, signed, len(signed), raw_key) == 0


def _sign_large(key: nacl.signing.SigningKey, message: bytes) -> bytes:
    """libsodium's ``crypto_sign`` into one output buffer, of which only the signature is
    copied out: ``SigningKey.sign`` also returns signature + message as a new bytes object
    (two copies of a manifest of gigabytes; this makes the one the call writes)."""
    from nacl._sodium import ffi, lib

    signed = ffi.new("unsigned char[]", len(message) + 64)
    length = ffi.new("unsigned long long *")
    secret = key._signing_key  # noqa: SLF001 - the 64-byte libsodium secret key
    if lib.crypto_sign(signed, length, message, len(message), secret) != 0:
        raise ValueError("libsodium crypto_sign failed")
    return bytes(ffi.buffer(signed, 64))


def write_key_pair(key: SigningKey, out_dir: Path) -> tuple[Path, Path]:
    """Write ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``out_dir`` (created mode 0700 if
    it does not exist; an existing folder keeps its mode); refuse to overwrite."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = out_dir / f"{key.name}.key"
    public_path = out_dir / f"{key.name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise UsageError(f"{path} already exists; refusing to overwrite a key file")
    private_obj = {
        "type": PRIVATE_TYPE,
        "version": 1,
        "name": key.name,
        "seed": base64.b64encode(key.seed).decode(),
        "public_key": key.public.b64,
    }
    _create(private_path, (pretty_json(private_obj) + "\n").encode(), 0o600)
    write_public_key(key.public, public_path)
    return private_path, public_path


def write_public_key(public: PublicKey, path: Path) -> None:
    _create(path, (pretty_json(public.to_json_obj()) + "\n").encode(), 0o644)


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        write_new_file(path, data, mode)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite a key file") from None


def _read_regular_file(path: Path) -> tuple[bytes, int]:
    """The bytes of a key file and its permission bits.

    Opened with O_NONBLOCK, so opening a FIFO does not wait for a writer, and O_NOCTTY; the
    type is checked on the open descriptor, so nothing swapped in between a check and the open
    gets past. (Symbolic links are followed: a key file may be a link to one.)
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyFileError(str(path), "no such file") from None
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = next((text for test, text in _NOT_REGULAR if test(mode)),
                        "not a regular file")
            raise KeyFileError(str(path), f"is {what}, not a key file")
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return data, stat.S_IMODE(mode)


def _read_key_obj(path: Path) -> tuple[dict[str, object], int]:
    """The JSON object of a key file, checked for type, version and name, and its mode."""
    data, mode = _read_regular_file(path)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(str(path), "too large to be a key file")
    try:
        obj = parse_json(data)
    except NotCanonicalError:
        raise KeyFileError(str(path), "not a sealtrail key file (not JSON)") from None
    if not isinstance(obj, dict) or obj.get("type") not in (PRIVATE_TYPE, PUBLIC_TYPE):
        raise KeyFileError(str(path), "not a sealtrail key file (no sealtrail key type)")
    if obj.get("version") != 1:
        raise KeyFileError(str(path), f"unsupported key file version {obj.get('version')!r}")
    name = obj.get("name")
    if not isinstance(name, str) or not KEY_NAME_RE.match(name):
        raise KeyFileError(str(path), "corrupt: bad or missing key name")
    return obj, mode


def _b64_field(obj: dict[str, object], field: str, path: Path, length: int) -> bytes:
    try:
        raw = strict_b64decode(obj.get(field))
    except NotCanonicalError:
        raw = b""
    if len(raw) != length:
        raise KeyFileError(str(path), f"corrupt: {field} is not {length} bytes of base64")
    return raw


#: Receives the text of a warning about a key file (default: `warnings.warn`).
WarnFn = Callable[[str], None]


def _warn(text: str) -> None:
    warnings.warn(text, KeyFileWarning, stacklevel=4)  # the caller of load_*_key


def load_private_key(path: Path | str, *, warn: WarnFn = _warn) -> SigningKey:
    """Load a private key file, checking that it is one and that it is intact; ``warn`` is
    told (one line naming the file and its mode) if group or others may access it."""
    path = Path(path)
    obj, mode = _read_key_obj(path)
    if obj["type"] == PUBLIC_TYPE:
        raise KeyFileError(str(path), "is a public key; a private key (.key) is needed to sign")
    return _private_key(obj, path, mode, warn)


def _private_key(obj: dict[str, object], path: Path, mode: int, warn: WarnFn) -> SigningKey:
    seed = _b64_field(obj, "seed", path, 32)
    stated_public = _b64_field(obj, "public_key", path, 32)
    key = SigningKey(str(obj["name"]), seed)
    if key.public.raw != stated_public:
        raise KeyFileError(str(path), "corrupt: public key does not match the private seed")
    if mode & 0o077:
        warn(f"private key file {path} is open to group or others (mode {mode:04o}); "
             f"make it private with: chmod 600 {path}")
    return key


def load_public_key(path: Path | str) -> PublicKey:
    """Load a public key file; a private key file is refused (see the module docstring)."""
    path = Path(path)
    obj, _ = _read_key_obj(path)
    if obj["type"] == PRIVATE_TYPE:
        raise KeyFileError(str(path), "is a private key; give its public key (.pub) here")
    return _public_key(obj, path)


def load_key_file(path: Path | str, *, warn: WarnFn = _warn) -> SigningKey | PublicKey:
    """Load a key file of either kind (`SigningKey` for a private one)."""
    path = Path(path)
    obj, mode = _read_key_obj(path)
    if obj["type"] == PRIVATE_TYPE:
        return _private_key(obj, path, mode, warn)
    return _public_key(obj, path)


def _public_key(obj: dict[str, object], path: Path) -> PublicKey:
    raw = _b64_field(obj, "public_key", path, 32)
    public = PublicKey(str(obj["name"]), raw)
    if obj.get("key_id") != public.key_id:
        raise KeyFileError(str(path), "corrupt: key_id does not match the public key")
    return public


def public_key_from_obj(obj: object, where: str) -> PublicKey:
    """Rebuild a public key recorded inside a signed record (a ledger entry, a manifest)."""
    from sealtrail.errors import ManifestInvalid

    if not isinstance(obj, dict):
        raise ManifestInvalid(where, "public key record is not an object")
    name, b64 = obj.get("name"), obj.get("public_key")
    try:
        raw = strict_b64decode(b64)
    except NotCanonicalError:
        raw = b""
    if not isinstance(name, str) or len(raw) != 32:
        raise ManifestInvalid(where, "public key record is malformed")
    return PublicKey(name, raw)
