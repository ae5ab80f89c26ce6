"""The built-in rule pack: one SQL file a rule in ``sealtrail/findings/rules/`` (package data).

A rule file opens with a block comment holding YAML (the rule's metadata and routing) and goes
on with the SELECT of the contract in ``model.py``::

    /*
    id: sealtrail-ssh-brute-force
    title: SSH password brute force from one address
    level: high
    status: stable
    kind: correlation                  # event (default), correlation, config
    tactics: [credential-access]
    techniques: [T1110.001]
    description: ...
    false_positives: [...]
    author: sealtrail
    derived_from: <SigmaHQ rule id>    # when derived from a SigmaHQ rule
    references: [...]
    sources: [syslog, journald]        # events.source values it reads (routing)
    needs: [[Security, 4625]]          # (channel, event_id) pairs it reads (routing)
    */
    SELECT ... (the contract's columns)

Views several rules share are in ``rules/views/<name>.sql`` (one SELECT each, named after the
file); the engine creates them before the rules run. A file that does not parse is a
``RuleFailure`` naming the file and why; the others load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from sealtrail.collectors.yaml_data import YAMLError, load_one
from sealtrail.findings.model import (
    KINDS,
    LEVELS,
    STATUSES,
    CompiledRule,
    RuleFailure,
    RuleMeta,
    RuleSource,
)

SOURCE = "builtin"
_REQUIRED = ("id", "title", "level", "status", "tactics", "techniques", "description",
             "false_positives", "author")
_KNOWN = {*_REQUIRED, "kind", "derived_from", "references", "sources", "needs"}


class RuleFileError(ValueError):
    """A rule file that cannot be loaded, with why."""


def _sql_files(folder: Traversable) -> list[Traversable]:
    return sorted((f for f in folder.iterdir() if f.name.endswith(".sql")),
                  key=lambda f: f.name)


def rule_files() -> list[Traversable]:
    """The pack's rule files, sorted by name (``importlib.resources``: works from a wheel)."""
    return _sql_files(resources.files("sealtrail.findings") / "rules")


def view_files() -> list[Traversable]:
    """The views the pack's rules share (``rules/views/<name>.sql``: one SELECT a file, the
    view named after the file), so that a definition two rules use is written once."""
    return _sql_files(resources.files("sealtrail.findings") / "rules" / "views")


def pack_sha256(files: Iterable[Traversable] | None = None) -> str:
    """SHA-256 over the name and bytes of each rule and view file, in name order."""
    digest = hashlib.sha256()
    chosen = files if files is not None else [*rule_files(), *view_files()]
    for file in chosen:
        digest.update(file.name.encode() + b"\x00" + file.read_bytes() + b"\x00")
    return digest.hexdigest()


def parse_rule(text: str, name: str) -> CompiledRule:
    """One rule file's text as a compiled rule.

    Raises:
        RuleFileError: no YAML header, bad YAML, a missing or unknown field, a bad value, or
            no SQL after the header.
    """
    stripped = text.lstrip()
    if not stripped.startswith("/*") or "*/" not in stripped:
        raise RuleFileError("no /* YAML */ header at the top")
    header, _, sql = stripped[2:].partition("*/")
    try:
        data = load_one(header)
    except YAMLError as exc:
        raise RuleFileError(f"header is not YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RuleFileError("header is not a YAML mapping")
    missing = [k for k in _REQUIRED if k not in data]
    unknown = sorted(set(map(str, data)) - _KNOWN)
    if missing or unknown:
        raise RuleFileError("; ".join(
            ([f"missing {', '.join(missing)}"] if missing else [])
            + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
    meta = RuleMeta(
        rule_id=_text(data, "id"), title=_text(data, "title"),
        level=_choice(data, "level", LEVELS), status=_choice(data, "status", STATUSES),
        source=SOURCE, tactics=_texts(data, "tactics"), techniques=_texts(data, "techniques"),
        description=_text(data, "description"), false_positives=_texts(data, "false_positives"),
        author=_text(data, "author"), references=_texts(data, "references"),
        derived_from=_text(data, "derived_from") if data.get("derived_from") else None,
    )
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise RuleFileError("no SQL after the header")
    return CompiledRule(meta=meta, sql=sql, kind=_choice(data, "kind", KINDS, "event"),
                        needs=frozenset(_needs(data.get("needs") or [])),
                        sources=frozenset(_texts(data, "sources")))


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RuleFileError(f"{key} must be a non-empty text")
    return " ".join(value.split())


def _texts(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleFileError(f"{key} must be a list of texts")
    return tuple(value)


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...],
            default: str | None = None) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise RuleFileError(f"{key} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _needs(value: Any) -> list[tuple[str | None, int | None]]:
    pairs = []
    for item in value if isinstance(value, list) else [value]:
        if (not isinstance(item, list) or len(item) != 2
                or not isinstance(item[0], str | None) or not isinstance(item[1], int | None)
                or isinstance(item[1], bool)):
            raise RuleFileError(f"needs: {item!r} is not [channel, event_id]")
        pairs.append((item[0], item[1]))
    return pairs


def load_builtin(files: Iterable[Traversable] | None = None,
                 views: Iterable[Traversable] | None = None) -> RuleSource:
    """The built-in pack as a rule source (a file that fails to load is a failure, not an
    exception; two files with one id: the second is a failure)."""
    rules: list[CompiledRule] = []
    failures: list[RuleFailure] = []
    seen: set[str] = set()
    for file in files if files is not None else rule_files():
        try:
            rule = parse_rule(file.read_text(encoding="utf-8"), file.name)
        except (RuleFileError, UnicodeDecodeError) as exc:
            failures.append(RuleFailure(f"file:{file.name}", file.name, SOURCE,
                                        f"{file.name}: {exc}"))
            continue
        if rule.meta.rule_id in seen:
            failures.append(RuleFailure(rule.meta.rule_id, rule.meta.title, SOURCE,
                                        f"{file.name}: id {rule.meta.rule_id} used twice"))
            continue
        seen.add(rule.meta.rule_id)
        rules.append(rule)
    shared = {f.name.removesuffix(".sql"): f.read_text(encoding="utf-8").strip().rstrip(";")
              for f in (views if views is not None else view_files())}
    return RuleSource(SOURCE, views=shared, rules=tuple(rules), failures=tuple(failures))
