"""The collection plan: what to take from a folder source, decided before any byte is read.

`plan_collection` resolves the requested artifacts (default: the triage group of the source's
OS) into leaf definitions, expands their path variables against the host
(`variables.KnowledgeBase`), walks the source for every pattern (`globbing.Globber`) and
returns a `CollectionPlan`:

* ``items``: every path found, once, with every artifact that named it and what to do with
  it. ``outcome`` None means "a regular file: copy it"; anything else (a symlink, a FIFO, a
  folder that could not be listed, a file over the size limit) is recorded, never read.
* ``artifacts``: one `ArtifactOutcome` per leaf source and per ``--path`` glob, so a missing
  file, an unresolvable variable or a registry source a folder cannot serve is evidence too.

Nothing here reads file contents except small configuration files (``etc/passwd``) needed to
expand variables. Copying and hashing is the job of the bundle writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sealtrail.collectors.definitions import (
    GROUP_TYPE,
    ArtifactDefinition,
    ArtifactSource,
    DefinitionRegistry,
    describe,
    load_registry,
    normalise_os,
    triage_group,
)
from sealtrail.collectors.globbing import Globber, WalkProblem, has_magic, split_pattern
from sealtrail.collectors.source import DirectorySource, FileInfo
from sealtrail.collectors.variables import KnowledgeBase, normalise_pattern
from sealtrail.errors import UsageError

__all__ = [
    "ITEM_OUTCOMES",
    "SOURCE_OUTCOMES",
    "ArtifactOutcome",
    "CollectionPlan",
    "PlannedItem",
    "describe",
    "plan_collection",
]

#: Outcomes of a planned item that is not copied (None means: a regular file to copy).
ITEM_OUTCOMES = ("symlink", "special", "unreadable", "too_large", "directory", "unrecoverable")
#: Outcomes of one artifact source or ``--path`` glob.
SOURCE_OUTCOMES = ("matched", "missing", "unsupported", "unresolved", "error")

_MAX_NOTES = 3


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One path found in the source.

    Attributes:
        relpath: the path inside the source.
        info: what ``lstat`` said when the plan was made (None if it could not be stat'ed).
        artifacts: every artifact (or ``path:<glob>``) that named it, sorted.
        outcome: None for a regular file to be copied; else ``symlink``, ``special``,
            ``unreadable``, ``too_large``, ``directory`` or ``unrecoverable`` (a deleted file
            of an image whose content cannot be told apart from what replaced it).
        reason: human text (the target of a symlink, the errno name of an unreadable folder).
    """

    relpath: bytes
    info: FileInfo | None
    artifacts: tuple[str, ...]
    outcome: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ArtifactOutcome:
    """How one leaf artifact source or ``--path`` glob fared.

    Attributes:
        name: the artifact name, or ``path:<glob>``.
        outcome: ``matched``, ``missing``, ``unsupported``, ``unresolved`` or ``error``.
        reason: human text.
        patterns: the patterns searched, relative to the source root (a pattern whose
            variables could not be resolved is listed as written).
        matched: how many paths it matched.
        source_type: the definition source type (``FILE``, ``REGISTRY_KEY``...), ``PATH``
            for a ``--path`` glob, ``""`` when the artifact has no source for the OS.
    """

    name: str
    outcome: str
    reason: str
    patterns: tuple[str, ...]
    matched: int
    source_type: str = ""


@dataclass(frozen=True, slots=True)
class CollectionPlan:
    """What to collect from one source.

    Attributes:
        os_name: ``linux``, ``windows``, ``darwin`` or None (not known and not needed).
        items: every path found, sorted by relpath, each once.
        artifacts: one outcome per leaf artifact source and ``--path`` glob, in request order.
    """

    os_name: str | None
    items: tuple[PlannedItem, ...]
    artifacts: tuple[ArtifactOutcome, ...]

    @property
    def files(self) -> tuple[PlannedItem, ...]:
        """The items to copy (regular files within the size limit)."""
        return tuple(i for i in self.items if i.outcome is None)


@dataclass(slots=True)
class _Item:
    info: FileInfo | None
    outcome: str | None
    reason: str
    names: set[str] = field(default_factory=set)


def _unrecoverable(info: FileInfo) -> str:
    """Why a deleted file's content cannot be collected ("" when it can): only a metadata
    entry that survives, is itself unallocated (not reused by another file) and records a
    size points at the deleted file's own data."""
    if info.allocated is None:
        return "deleted; its metadata entry is gone (only the name survives)"
    if info.allocated:
        return "deleted; its metadata entry now belongs to another file"
    if info.size <= 0:
        return "deleted; its metadata entry records no content (size 0)"
    return ""


def _describe_target(info: FileInfo) -> str:
    return (info.link_target or b"").decode("utf-8", "backslashreplace")


class _Builder:
    """Collects items and outcomes while the patterns are walked."""

    def __init__(self, globber: Globber, max_file_size: int | None) -> None:
        self.globber = globber
        self.max_file_size = max_file_size
        self.items: dict[bytes, _Item] = {}
        self.outcomes: list[ArtifactOutcome] = []

    def _classify(self, info: FileInfo, directory_reason: str) -> tuple[str | None, str]:
        if info.kind == "file" and info.deleted:
            unrecoverable = _unrecoverable(info)
            if unrecoverable:
                return "unrecoverable", unrecoverable
        if info.kind == "file":
            if self.max_file_size is not None and info.size > self.max_file_size:
                return "too_large", (
                    f"{info.size} bytes, over the limit of {self.max_file_size} bytes"
                )
            return None, ""
        if info.kind == "symlink":
            return "symlink", f"symlink to {_describe_target(info)}; not followed"
        if info.kind == "dir":
            return "directory", directory_reason
        return "special", f"{info.kind}; never opened"

    def record(self, info: FileInfo, name: str, directory_reason: str = "") -> None:
        item = self.items.get(info.relpath)
        if item is None:
            outcome, reason = self._classify(info, directory_reason or "a folder, not a file")
            item = self.items[info.relpath] = _Item(info, outcome, reason)
        item.names.add(name)

    def record_unreadable(self, problem: WalkProblem, name: str) -> None:
        item = self.items.get(problem.relpath)
        reason = problem.reason  # names the errno (EACCES)
        if item is None:
            info = self.globber.info(problem.relpath)
            item = self.items[problem.relpath] = _Item(info, "unreadable", reason)
        elif item.outcome in (None, "directory"):
            item.outcome, item.reason = "unreadable", reason
        item.names.add(name)

    def walk(
        self,
        name: str,
        pattern: str,
        *,
        source_type: str,
        case_insensitive: bool,
        artifact_semantics: bool,
        problems: list[WalkProblem],
    ) -> set[bytes]:
        """Walk one pattern for one source; returns the paths it recorded."""
        walk_pattern = pattern + "/*" if source_type == "DIRECTORY" else pattern
        parts = split_pattern(walk_pattern)
        wildcard_last = bool(parts) and has_magic(parts[-1])
        found: set[bytes] = set()
        for info in self.globber.glob(
            walk_pattern,
            case_insensitive=case_insensitive,
            artifact_semantics=artifact_semantics,
            problems=problems,
        ):
            if info.kind == "dir":
                if source_type == "PATH":
                    self.record(info, name, "a location named by a PATH source; not copied")
                    found.add(info.relpath)
                elif not wildcard_last and source_type != "DIRECTORY":
                    self.record(info, name, "a folder named by a file pattern; not copied")
                    found.add(info.relpath)
                continue  # folders met by a wildcard are how files are found, not evidence
            self.record(info, name)
            found.add(info.relpath)
        for problem in problems:
            if problem.kind == "unreadable":
                self.record_unreadable(problem, name)
        return found

    def plan(self, os_name: str | None) -> CollectionPlan:
        items = tuple(
            PlannedItem(
                relpath=relpath,
                info=item.info,
                artifacts=tuple(sorted(item.names)),
                outcome=item.outcome,
                reason=item.reason,
            )
            for relpath, item in sorted(self.items.items())
        )
        return CollectionPlan(os_name=os_name, items=items, artifacts=tuple(self.outcomes))


def _notes(problems: Sequence[WalkProblem], kinds: tuple[str, ...]) -> list[str]:
    unique = dict.fromkeys(p.reason for p in problems if p.kind in kinds)
    return list(unique)[:_MAX_NOTES]


def _summarise(
    name: str,
    source_type: str,
    patterns: list[str],
    matched: int,
    problems: list[WalkProblem],
    unresolved: list[str],
    errors: list[str],
    searched: int,
) -> ArtifactOutcome:
    """Turn what one source's walk met into its outcome (matched > error > missing >
    unresolved: a source is only "unresolved" when no pattern could be searched at all)."""
    unreadable = _notes(problems, ("unreadable",))
    limits = _notes(problems, ("depth_limit",))
    side = _notes(problems, ("symlink", "excluded"))
    unresolved_note = [f"no value for {', '.join(sorted(set(unresolved)))}"] if unresolved else []
    if matched:
        notes = unreadable + limits + unresolved_note
        reason = f"{matched} path{'s' if matched != 1 else ''} found"
        outcome = "matched"
    elif unreadable or errors:
        notes = errors + unreadable + side
        reason, outcome = "could not search everything", "error"
    elif searched:
        notes = side + limits + unresolved_note
        reason, outcome = "nothing matches", "missing"
    else:
        notes = []
        reason = unresolved_note[0] if unresolved_note else "no pattern to search"
        outcome = "unresolved"
    if notes:
        reason += "; " + "; ".join(notes)
    return ArtifactOutcome(name, outcome, reason, tuple(patterns), matched, source_type)


def _applies(definition: ArtifactDefinition, source: ArtifactSource, os_name: str | None) -> bool:
    if os_name is None:
        return True
    wanted = normalise_os(os_name)
    scope = source.supported_os or definition.supported_os
    return not scope or wanted in scope


def _plan_source(
    builder: _Builder,
    kb: KnowledgeBase,
    definition: ArtifactDefinition,
    source: ArtifactSource,
    case_insensitive: bool,
) -> None:
    if not source.collectable:
        builder.outcomes.append(
            ArtifactOutcome(
                definition.name,
                "unsupported",
                f"{source.type} sources cannot be collected from a folder source",
                (),
                0,
                source.type,
            )
        )
        return
    patterns: list[str] = []
    unresolved: list[str] = []
    errors: list[str] = []
    problems: list[WalkProblem] = []
    searched = 0
    found: set[bytes] = set()
    for raw in source.paths:
        expansion = kb.expand(raw, source.separator)
        unresolved.extend(kb.explain(v) for v in expansion.unresolved)
        patterns.extend(expansion.patterns or (raw,))
        for pattern in expansion.patterns:
            searched += 1
            try:
                found |= builder.walk(
                    definition.name,
                    pattern,
                    source_type=source.type,
                    case_insensitive=case_insensitive,
                    artifact_semantics=True,
                    problems=problems,
                )
            except UsageError as exc:
                errors.append(str(exc))
    builder.outcomes.append(
        _summarise(
            definition.name,
            source.type,
            list(dict.fromkeys(patterns)),
            len(found),
            problems,
            unresolved,
            errors,
            searched,
        )
    )


def plan_collection(
    source: DirectorySource,
    *,
    artifact_names: Sequence[str] = (),
    path_globs: Sequence[str] = (),
    os_name: str | None = None,
    max_file_size: int | None = None,
    registry: DefinitionRegistry | None = None,
) -> CollectionPlan:
    """Decide what to collect from ``source``.

    Args:
        source: the folder source.
        artifact_names: artifact or group names; default: the triage group of the OS
            (when the OS cannot be told, ``path_globs`` alone are planned).
        path_globs: ad-hoc globs relative to the source root, ``**`` recursive; planned in
            addition to the artifacts.
        os_name: ``linux``, ``windows`` or ``darwin``; default: detected from the source.
        max_file_size: regular files larger than this are recorded ``too_large``.
        registry: the definitions (default: `load_registry()`).

    Returns:
        The plan (items sorted by path, outcomes in request order).

    Raises:
        UsageError: the OS is needed but cannot be told, an OS name or a glob is invalid.
        UnknownArtifact: an artifact name is not defined (the message suggests close names).
    """
    if os_name is not None:
        normalise_os(os_name)
        os_key: str | None = os_name.lower().replace("macos", "darwin")
    else:
        os_key = source.detect_os()
    names = list(artifact_names)
    if not names:
        # --path globs are extra to the default set; they stand alone only when the OS (and
        # so the default set) is unknown.
        if os_key is not None:
            names = [triage_group(os_key)]
        elif not path_globs:
            raise UsageError(f"cannot tell the OS of {source.root}; pass --os")
    if names and registry is None:
        registry = load_registry()  # not needed (nor read) for --path globs alone
    for name in names:
        registry.get(name)  # unknown names fail before any walking
    globs: list[tuple[str, str]] = []
    for glob_text in path_globs:
        pattern = normalise_pattern(glob_text)
        if not pattern:
            raise UsageError(f"--path {glob_text!r} names no path inside the source")
        split_pattern(pattern)
        globs.append((glob_text, pattern))

    case_insensitive = os_key in ("windows", "darwin")
    kb = KnowledgeBase.from_source(source, os_key)
    builder = _Builder(Globber(source), max_file_size)

    leaves: dict[str, ArtifactDefinition] = {}
    for name in names:
        assert registry is not None
        for leaf in registry.expand(name, os_key):
            leaves.setdefault(leaf.name, leaf)
    for leaf in leaves.values():
        sources = [s for s in leaf.sources if s.type != GROUP_TYPE and _applies(leaf, s, os_key)]
        if not sources:
            scope = ", ".join(leaf.supported_os) or "no OS"
            builder.outcomes.append(
                ArtifactOutcome(
                    leaf.name,
                    "unsupported",
                    f"no source for {os_key}; defined for {scope}",
                    (),
                    0,
                )
            )
            continue
        for artifact_source in sources:
            _plan_source(builder, kb, leaf, artifact_source, case_insensitive)

    for glob_text, pattern in globs:
        name = f"path:{glob_text}"
        problems: list[WalkProblem] = []
        found = builder.walk(
            name,
            pattern,
            source_type="GLOB",
            case_insensitive=case_insensitive,
            artifact_semantics=False,
            problems=problems,
        )
        builder.outcomes.append(
            _summarise(name, "PATH", [pattern], len(found), problems, [], [], 1)
        )
    return builder.plan(os_key)
