"""Artifact definitions as data: the ForensicArtifacts catalogue plus sealtrail's own YAML.

What to collect is never a path list in code. It comes from the definitions shipped with the
``artifacts`` package and from ``sealtrail/collectors/definitions/*.yaml`` (same format), read
with the catalogue's own reader so both are validated the same way. The rest of sealtrail sees
only the frozen dataclasses of this module, never the ``artifacts`` package's objects; this is
the one module that imports ``artifacts``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from artifacts import errors as artifacts_errors
from artifacts import reader as artifacts_reader

from sealtrail.collectors.yaml_data import YAMLError, load_documents
from sealtrail.errors import UsageError

__all__ = [
    "COLLECTABLE_TYPES",
    "ArtifactDefinition",
    "ArtifactSource",
    "DefinitionError",
    "DefinitionRegistry",
    "UnknownArtifact",
    "catalogue_dir",
    "describe",
    "load_registry",
    "normalise_os",
    "own_definitions_dir",
    "triage_group",
]

#: Source types a folder source can collect; any other type is reported as unsupported.
COLLECTABLE_TYPES = frozenset({"FILE", "PATH", "DIRECTORY"})
GROUP_TYPE = "ARTIFACT_GROUP"

_OS_NAMES = {
    "windows": "Windows",
    "linux": "Linux",
    "darwin": "Darwin",
    "macos": "Darwin",
    "esxi": "ESXi",
    "android": "Android",
    "ios": "iOS",
}

_TRIAGE_GROUPS = {
    "Linux": "SealtrailLinuxTriage",
    "Windows": "SealtrailWindowsTriage",
    "Darwin": "SealtrailDarwinTriage",
}


def normalise_os(os_name: str | None) -> str | None:
    """The catalogue's spelling of an OS name (``linux`` -> ``Linux``), None stays None.

    Raises:
        UsageError: the name is not an OS the catalogue knows.
    """
    if os_name is None:
        return None
    try:
        return _OS_NAMES[os_name.lower()]
    except KeyError:
        known = ", ".join(sorted({k for k in _OS_NAMES if k != "macos"}))
        raise UsageError(f"unknown OS {os_name!r}; expected one of {known}") from None


class DefinitionError(UsageError):
    """A definitions file that cannot be read or that conflicts with another definition.

    Attributes:
        path: the file at fault.
        reason: what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"artifact definitions {path}: {reason}")


class UnknownArtifact(UsageError):
    """An artifact name that no loaded definition has.

    Attributes:
        name: the name asked for.
        suggestions: close names, best first (may be empty).
    """

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown artifact {name!r}{hint}")


@dataclass(frozen=True, slots=True)
class ArtifactSource:
    """One source of an artifact definition.

    Attributes:
        type: ``FILE``, ``PATH``, ``DIRECTORY``, ``ARTIFACT_GROUP``, or a type a folder
            source cannot collect (``REGISTRY_KEY``, ``REGISTRY_VALUE``, ``WMI``, ``COMMAND``).
        paths: path patterns (FILE, PATH, DIRECTORY), empty otherwise.
        separator: the separator the paths are written with (``/`` or ``\\``).
        supported_os: operating systems this source applies to; empty means those of the
            definition.
        names: member artifact names (ARTIFACT_GROUP), empty otherwise.
    """

    type: str
    paths: tuple[str, ...] = ()
    separator: str = "/"
    supported_os: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def collectable(self) -> bool:
        """Whether a folder source can collect this source (FILE, PATH, DIRECTORY)."""
        return self.type in COLLECTABLE_TYPES

    def applies_to(self, os_name: str | None) -> bool:
        """Whether the source applies to ``os_name`` (any OS name spelling; None: all)."""
        wanted = normalise_os(os_name)
        return wanted is None or not self.supported_os or wanted in self.supported_os


@dataclass(frozen=True, slots=True)
class ArtifactDefinition:
    """One artifact definition.

    Attributes:
        name: the unique name (``LinuxAuthLogs``).
        doc: the one-line description.
        supported_os: operating systems it applies to; empty means any.
        sources: its sources, in file order.
        aliases: other names it is known by.
        origin: the definitions file it was read from.
    """

    name: str
    doc: str
    supported_os: tuple[str, ...]
    sources: tuple[ArtifactSource, ...]
    aliases: tuple[str, ...] = ()
    origin: str = ""

    @property
    def is_group(self) -> bool:
        """Whether every source is an ARTIFACT_GROUP."""
        return bool(self.sources) and all(s.type == GROUP_TYPE for s in self.sources)

    def applies_to(self, os_name: str | None) -> bool:
        """Whether the definition applies to ``os_name`` (None: any)."""
        wanted = normalise_os(os_name)
        return wanted is None or not self.supported_os or wanted in self.supported_os


def _convert(definition: object, origin: str) -> ArtifactDefinition:
    """Copy one ``artifacts.artifact.ArtifactDefinition`` into our frozen dataclasses."""
    sources: list[ArtifactSource] = []
    for source in definition.sources:  # type: ignore[attr-defined]
        own_os = tuple(getattr(source, "supported_os", None) or ())
        kind = source.type_indicator
        if kind == GROUP_TYPE:
            sources.append(
                ArtifactSource(type=kind, supported_os=own_os, names=tuple(source.names))
            )
        elif hasattr(source, "paths"):
            sources.append(
                ArtifactSource(
                    type=kind,
                    paths=tuple(source.paths),
                    separator=source.separator or "/",
                    supported_os=own_os,
                )
            )
        else:
            sources.append(ArtifactSource(type=kind, supported_os=own_os))
    return ArtifactDefinition(
        name=definition.name,  # type: ignore[attr-defined]
        doc=" ".join((definition.description or "").split()),  # type: ignore[attr-defined]
        supported_os=tuple(definition.supported_os or ()),  # type: ignore[attr-defined]
        sources=tuple(sources),
        aliases=tuple(definition.aliases or ()),  # type: ignore[attr-defined]
        origin=origin,
    )


def catalogue_dir() -> Path:
    """The folder of YAML definitions shipped with the ``artifacts`` package."""
    return Path(artifacts_reader.__file__).resolve().parent / "data"


def own_definitions_dir() -> Path:
    """The folder of sealtrail's own YAML definitions."""
    return Path(__file__).resolve().parent / "definitions"


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DefinitionError(str(folder), "not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _read_file(path: Path) -> list[ArtifactDefinition]:
    """Parse YAML here (fast loader); the artifacts package still validates each definition."""
    reader = artifacts_reader.ArtifactsReader()
    try:
        text = path.read_text(encoding="utf-8")
        documents = load_documents(text)
        out = []
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict):
                raise artifacts_errors.FormatError(
                    f"YAML markup did not produce a dictionary: {document!r}")
            out.append(_convert(reader.ReadArtifactDefinitionValues(document), path.name))
        return out
    except artifacts_errors.FormatError as exc:
        raise DefinitionError(str(path), str(exc)) from exc
    except YAMLError as exc:
        raise DefinitionError(str(path), " ".join(str(exc).split())) from exc
    except (OSError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        # The reader assumes well-formed mappings; anything else surfaces as one of these.
        raise DefinitionError(str(path), f"{type(exc).__name__}: {exc}") from exc


class DefinitionRegistry:
    """Artifact definitions by name, with group expansion.

    Names are looked up as written first, then case-insensitively and by alias, as the
    catalogue itself does.

    Args:
        definitions: the definitions; a name (or alias) defined twice is an error.

    Raises:
        DefinitionError: a duplicate name, or a group naming an artifact nobody defines.
    """

    def __init__(self, definitions: Iterable[ArtifactDefinition]) -> None:
        self._by_name: dict[str, ArtifactDefinition] = {}
        self._by_folded: dict[str, ArtifactDefinition] = {}
        for definition in definitions:
            for key in (definition.name, *definition.aliases):
                clash = self._by_folded.get(key.lower())
                if clash is not None:
                    raise DefinitionError(
                        definition.origin or definition.name,
                        f"{key!r} of {definition.name} is already defined by {clash.name} "
                        f"in {clash.origin or 'another file'}",
                    )
                self._by_folded[key.lower()] = definition
            self._by_name[definition.name] = definition
        for definition in self._by_name.values():
            for source in definition.sources:
                for member in source.names:
                    if member.lower() not in self._by_folded:
                        raise DefinitionError(
                            definition.origin or definition.name,
                            f"group {definition.name} names undefined artifact {member!r}",
                        )

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_folded

    def get(self, name: str) -> ArtifactDefinition:
        """The definition called ``name`` (or with that alias, in any case).

        Raises:
            UnknownArtifact: no such definition; the error suggests close names.
        """
        found = self._by_name.get(name) or self._by_folded.get(name.lower())
        if found is not None:
            return found
        folded = {n.lower(): n for n in self._by_name}
        close = difflib.get_close_matches(name.lower(), list(folded), n=3, cutoff=0.6)
        raise UnknownArtifact(name, [folded[c] for c in close])

    def names(self, os_name: str | None = None) -> list[str]:
        """Sorted names of all definitions, or of those that apply to ``os_name``."""
        return sorted(
            (d.name for d in self._by_name.values() if d.applies_to(os_name)), key=str.lower
        )

    def definitions(self, os_name: str | None = None) -> list[ArtifactDefinition]:
        """All definitions (or those that apply to ``os_name``), sorted by name."""
        return [self._by_name[n] for n in self.names(os_name)]

    def expand(self, name: str, os_name: str | None = None) -> list[ArtifactDefinition]:
        """Resolve a name into leaf (non-group) definitions, groups expanded recursively.

        A group reached twice (or a cycle) is expanded once. With ``os_name``, group sources
        that do not apply to that OS are skipped; leaves are returned whatever their OS (the
        caller decides what an OS mismatch means).

        Args:
            name: an artifact or group name.
            os_name: restrict group sources to this OS (None: all).

        Returns:
            Leaf definitions in first-seen order, without duplicates.

        Raises:
            UnknownArtifact: ``name`` is not defined.
        """
        leaves: dict[str, ArtifactDefinition] = {}
        seen: set[str] = set()
        stack = [self.get(name)]
        # Depth-first in written order: push members reversed so the first is expanded first.
        while stack:
            definition = stack.pop()
            if definition.name in seen:
                continue
            seen.add(definition.name)
            groups = [s for s in definition.sources if s.type == GROUP_TYPE]
            if not groups:
                leaves.setdefault(definition.name, definition)
                continue
            members = [
                member for source in groups if source.applies_to(os_name) for member in source.names
            ]
            stack.extend(self.get(m) for m in reversed(members))
            if len(groups) != len(definition.sources):
                # A definition mixing groups and other sources is itself a leaf too.
                leaves.setdefault(definition.name, definition)
        return list(leaves.values())

    def triage_names(self, os_name: str) -> list[str]:
        """The members of the default triage group for ``os_name``, as written."""
        group = self.get(triage_group(os_name))
        return [m for s in group.sources if s.applies_to(os_name) for m in s.names]


def describe(
    registry: DefinitionRegistry, os_name: str | None = None
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, doc, supported_os) of every definition that applies to ``os_name``, sorted.

    For ``sealtrail artifacts list``; also importable from `sealtrail.collectors.plan`.
    """
    return [(d.name, d.doc, d.supported_os) for d in registry.definitions(os_name)]


def triage_group(os_name: str) -> str:
    """The name of the default triage group for ``os_name``.

    Raises:
        UsageError: sealtrail has no triage set for that OS.
    """
    canonical = normalise_os(os_name)
    try:
        return _TRIAGE_GROUPS[canonical]  # type: ignore[index]
    except KeyError:
        raise UsageError(f"no default triage set for {os_name}; pass --artifact") from None


def _read_folder(folder: Path) -> tuple[ArtifactDefinition, ...]:
    return tuple(d for path in _yaml_files(folder) for d in _read_file(path))


@lru_cache(maxsize=1)
def _shipped_definitions() -> tuple[ArtifactDefinition, ...]:
    """The catalogue and sealtrail's own definitions, read once per process."""
    return _read_folder(catalogue_dir()) + _read_folder(own_definitions_dir())


@lru_cache(maxsize=1)
def _default_registry() -> DefinitionRegistry:
    return DefinitionRegistry(_shipped_definitions())


def load_registry(extra_dirs: Sequence[Path] = ()) -> DefinitionRegistry:
    """Load the catalogue, sealtrail's own definitions, and any extra folders of YAML.

    The default registry (no extra folders) is loaded once per process and shared; it takes
    about half a second.

    Args:
        extra_dirs: more folders of ``*.yaml`` definitions in the ForensicArtifacts format.

    Raises:
        DefinitionError: a file that is not valid, or a name defined twice.
    """
    if not extra_dirs:
        return _default_registry()
    extra = tuple(d for folder in extra_dirs for d in _read_folder(Path(folder)))
    return DefinitionRegistry(_shipped_definitions() + extra)
