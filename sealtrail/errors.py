"""The one exception tree of sealtrail.

Every error names the item at fault (a path, a bundle member, a ledger entry index) and, for
mismatches, the expected and observed values. The CLI turns these into one ``Error:`` line.

    SealtrailError
    ├── UsageError            bad arguments or files given by the user (exit 2)
    ├── KeyFileError          a key file that is missing, corrupt or of the wrong kind
    ├── CollectionError       a collection that cannot start or cannot be sealed
    │   └── DestinationFull   the case's bundle folder ran out of space (partial bundle removed)
    ├── AnalysisError         ingest, query or scan that cannot be done (bad SQL, no database)
    │   └── QueryRefused      SQL that would leave the case database (files, extensions, settings)
    ├── CaseError             a case folder that is missing, incomplete or already exists
    └── CustodyError          evidence or custody records that fail verification
        ├── HashMismatch
        ├── SizeMismatch
        ├── SignatureInvalid
        ├── UntrustedKey
        ├── MemberMissing / MemberUnexpected / UnsafeMemberPath
        ├── ManifestInvalid
        ├── ContainerInvalid      (bytes outside the ZIP records a bundle allows)
        ├── LedgerBroken          (the chain, an entry's form, a torn or damaged file)
        ├── CheckpointInvalid     (a malformed or wrongly signed checkpoint)
        └── InconsistentLedger    (the ledger does not extend a checkpoint: truncation, fork)
"""

from __future__ import annotations


class SealtrailError(Exception):
    """Base of every error sealtrail raises on purpose."""


class UsageError(SealtrailError):
    """The user asked for something that cannot be done as asked."""


class KeyFileError(SealtrailError):
    """A key file is missing, unreadable, corrupt or of the wrong kind."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"key file {path}: {reason}")


class CaseError(SealtrailError):
    """A case folder is missing, incomplete, or would be overwritten."""


class CollectionError(SealtrailError):
    """A collection could not start or could not be sealed."""

    def with_context(self, context: str) -> CollectionError:
        """The same error, with ``context`` (what became of the collection) added to its text.
        Subclasses that carry fields override this to keep them."""
        return CollectionError(f"{self}; {context}")


class ManifestTooLarge(CollectionError):
    """The signed manifest would exceed the format's bound (``MAX_ENVELOPE_BYTES``): raised at
    the seal, before anything is named ``.stb``; the ``.partial`` file is kept.

    Attributes:
        expected: the most bytes ``manifest.dsse.json`` may have.
        observed: the bytes this collection's envelope has.
    """

    def __init__(self, message: str, *, expected: int, observed: int) -> None:
        super().__init__(message)
        self.expected, self.observed = expected, observed

    def with_context(self, context: str) -> ManifestTooLarge:
        return ManifestTooLarge(f"{self}; {context}", expected=self.expected,
                                observed=self.observed)


class DestinationFull(CollectionError):
    """The file system holding the case's bundles ran out of space (ENOSPC, EDQUOT).

    The unsealed ``.partial`` bundle is removed (it would only keep the disk full) and
    ``collection_failed`` records that.

    Attributes:
        destination: the folder being written (the case's ``bundles`` folder).
        bundle_id: the collection that was not sealed.
        partial_removed: whether the ``.partial`` file could be removed.
        context: what else the caller added (`with_context`).
    """

    def __init__(self, destination: str, bundle_id: str, partial_removed: bool,
                 context: str = "") -> None:
        self.destination = destination
        self.bundle_id = bundle_id
        self.partial_removed = partial_removed
        self.context = context
        kept = ("the partial bundle was removed" if partial_removed
                else "the partial bundle could not be removed")
        super().__init__(f"no space left in {destination}: collection {bundle_id} not sealed, "
                         f"{kept}; free space there or use a case on a larger disk{context}")

    def with_context(self, context: str) -> DestinationFull:
        return DestinationFull(self.destination, self.bundle_id, self.partial_removed,
                               f"{self.context}; {context}")


class AnalysisError(SealtrailError):
    """An ingest, query, export or scan that cannot be done as asked."""


class QueryRefused(AnalysisError):
    """SQL given to ``query`` or ``timeline`` tried to leave the read-only case database: write,
    read a host file, attach a database, load an extension or change a setting.

    Attributes:
        reason: DuckDB's one-line refusal, e.g. ``Permission Error: Cannot access file "x"``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"query refused: {reason} (query and timeline only read the case "
                         "database)")


class CustodyError(SealtrailError):
    """Evidence or a custody record failed a check.

    Attributes:
        where: the item at fault, e.g. ``bundle B member data/x`` or ``ledger entry 7``.
        expected: what the check expected, if it is a comparison.
        observed: what it found.
    """

    def __init__(
        self,
        where: str,
        message: str,
        *,
        expected: object = None,
        observed: object = None,
    ) -> None:
        self.where = where
        self.message = message
        self.expected = expected
        self.observed = observed
        text = f"{where}: {message}"
        if expected is not None or observed is not None:
            text += f" (expected {expected}, observed {observed})"
        super().__init__(text)


class HashMismatch(CustodyError):
    """Bytes whose SHA-256 differs from the one recorded."""


class SizeMismatch(CustodyError):
    """Bytes whose length differs from the one recorded."""


class SignatureInvalid(CustodyError):
    """A signature that does not verify over the exact signed bytes."""


class UntrustedKey(CustodyError):
    """A valid signature, but by a key the verifier does not trust (or no longer trusts)."""


class MemberMissing(CustodyError):
    """A member the manifest lists is not in the bundle."""


class MemberUnexpected(CustodyError):
    """The bundle holds a member the manifest does not list."""


class UnsafeMemberPath(CustodyError):
    """A member name that could escape a destination folder or collide with another."""


class ManifestInvalid(CustodyError):
    """A manifest or envelope that is malformed or of the wrong type."""


class ContainerInvalid(CustodyError):
    """A bundle file that is not exactly the ZIP records the format allows, in order."""


class LedgerBroken(CustodyError):
    """A ledger entry that is malformed, out of order, or does not chain to its predecessor."""


class CheckpointInvalid(CustodyError):
    """A checkpoint that is malformed or carries no good signature by a trusted key."""


class InconsistentLedger(CustodyError):
    """The ledger does not extend a checkpoint: it was truncated, rewritten or forked."""
