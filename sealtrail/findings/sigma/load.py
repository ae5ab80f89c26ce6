"""Read Sigma rule files: every file ends as rules or as failures, never silently dropped.

A folder is walked for ``*.yml``/``*.yaml`` in sorted order. A file that is not YAML, or whose
rules pySigma rejects (unknown modifier, broken detection), gives one failure per rule it could
name, or one for the file. The rules of all files form one collection, so a correlation rule
can name rules of other files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from sealtrail.collectors.yaml_data import YAMLError
from sealtrail.findings.model import RuleFailure


@dataclass(frozen=True, slots=True)
class Loaded:
    """A parsed rule and the file it came from."""

    rule: SigmaRule | SigmaCorrelationRule
    path: Path


def rule_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")
                              and p.is_file())
        else:
            yield path


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def source_of(path: Path) -> str:
    return f"sigma:{path}"


def load(paths: Sequence[Path]) -> tuple[list[Loaded], list[RuleFailure], SigmaCollection]:
    """All rules of ``paths``, the failures, and the collection with references resolved."""
    loaded: list[Loaded] = []
    failures: list[RuleFailure] = []
    for path in rule_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(text, collect_errors=True,
                                                    resolve_references=False)
        except (OSError, UnicodeDecodeError, YAMLError, SigmaError, ValueError,
                TypeError) as exc:
            failures.append(RuleFailure(path.stem, path.name, source_of(path),
                                        f"not a Sigma rule file: {one_line(exc)}"))
            continue
        if collection.errors and not collection.rules:
            failures.append(RuleFailure(path.stem, path.name, source_of(path),
                                        one_line(collection.errors[0])))
        for rule in collection.rules:
            if rule.errors:
                failures.append(RuleFailure(str(rule.id or path.stem), rule.title or path.name,
                                            source_of(path), one_line(rule.errors[0])))
            else:
                loaded.append(Loaded(rule, path))
    whole = SigmaCollection([item.rule for item in loaded], resolve_references=False)
    return loaded, failures, whole
