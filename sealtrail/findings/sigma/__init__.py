"""Sigma rules as a `RuleSource`: SigmaHQ-format files -> DuckDB SQL over ``sigma_events``.

Steps: `load` reads the files (bad files and rules become failures); the level/status filter
picks the set to run; each rule's logsource is routed (`logsource`), its detection converted
(`convert`, fields by `fields`), and correlation rules built over their base rules
(`correlation`). Every selected rule ends as a `CompiledRule` or a `RuleFailure`.
"""

from __future__ import annotations

# ruff: noqa: S608 - this module writes SQL; rule values are quoted as SQL string literals
# (quotes doubled), field names checked against a name pattern, the rest our constants.
import re
from collections.abc import Sequence
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from sealtrail.findings.model import CompiledRule, RuleFailure, RuleMeta, RuleSource
from sealtrail.findings.sigma import correlation
from sealtrail.findings.sigma.convert import detection_sql
from sealtrail.findings.sigma.fields import VIEW, UnknownField, view_sql
from sealtrail.findings.sigma.load import Loaded, load, one_line, source_of
from sealtrail.findings.sigma.logsource import Route, UnmappedLogsource, route

#: The evidence columns of the contract, read from the view.
EVIDENCE = ('event_uid, ts, host, "user" AS user_name, src_ip, {group} AS group_key, '
            "NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no")
_ATTACK_ID = re.compile(r"^[tgs]\d", re.IGNORECASE)  # technique, group, software ids
_TECHNIQUE = re.compile(r"^t\d", re.IGNORECASE)
CONVERSION_ERRORS = (SigmaError, NotImplementedError, UnknownField, UnmappedLogsource,
                     TypeError, ValueError, KeyError)


def meta(rule: SigmaRule | SigmaCorrelationRule, path: Path) -> RuleMeta:
    tags = [(t.namespace, t.name) for t in rule.tags]
    return RuleMeta(
        rule_id=str(rule.id or path.stem),
        title=rule.title or path.name,
        level=rule.level.name.lower() if rule.level else "informational",
        status=rule.status.name.lower() if rule.status else "experimental",
        source=source_of(path),
        tactics=tuple(n for ns, n in tags if ns == "attack" and not _ATTACK_ID.match(n)),
        techniques=tuple(n.upper() for ns, n in tags if ns == "attack" and _TECHNIQUE.match(n)),
        description=rule.description or "",
        false_positives=tuple(str(f) for f in rule.falsepositives or ()),
        author=rule.author or "",
        references=tuple(str(r) for r in rule.references or ()),
    )


def event_sql(rule: SigmaRule) -> tuple[Route, str]:
    """The route of one single-event rule and its detection (a WHERE over the route's view)."""
    ls = rule.logsource
    where = route(ls.product, ls.category, ls.service)
    return where, detection_sql(rule, windows=where.windows, needs=where.needs)


def _compile(item: Loaded, views: dict[str, str]) -> CompiledRule:
    """One rule; the views of the routes it reads are added to ``views``."""
    rule = item.rule
    if isinstance(rule, SigmaCorrelationRule):
        sql, routes = correlation.correlation_sql(rule, event_sql)
        kind = "correlation"
    else:
        where, detection = event_sql(rule)
        sql = (f"SELECT {EVIDENCE.format(group='NULL::VARCHAR')} FROM {where.view} "
               f"WHERE {detection}")
        routes, kind = [where], "event"
    for where in routes:
        views[where.view] = where.view_sql()
    return CompiledRule(meta(rule, item.path), sql, kind,
                        frozenset().union(*(w.needs for w in routes)),
                        frozenset().union(*(w.sources for w in routes)))


def _selected(rule: SigmaRule | SigmaCorrelationRule, levels: set[str] | None,
              statuses: set[str] | None) -> bool:
    level = rule.level.name.lower() if rule.level else None
    status = rule.status.name.lower() if rule.status else None
    return ((levels is None or level in levels)
            and (statuses is None or status in statuses))


def sigma_source(paths: Sequence[Path], *, levels: set[str] | None,
                 statuses: set[str] | None) -> RuleSource:
    """Compile the Sigma rules of ``paths`` (files or folders) that pass the filters.

    ``levels``/``statuses`` None: every level/status. A file or rule that cannot be read is a
    failure whatever the filters (its level is unknown).
    """
    loaded, failures, whole = load(paths)
    unresolved: dict[int, str] = {}  # id(correlation) -> why its rules cannot be found
    for item in loaded:  # first, so that base rules know they are part of a correlation
        if isinstance(item.rule, SigmaCorrelationRule):
            try:
                item.rule.resolve_rule_references(whole)
            except CONVERSION_ERRORS as exc:
                unresolved[id(item.rule)] = one_line(exc)
    rules: list[CompiledRule] = []
    views = {VIEW: view_sql()}  # then one view per logsource, over this one
    for item in loaded:
        if not _selected(item.rule, levels, statuses) or not getattr(item.rule, "_output", True):
            continue  # filtered out, or a correlation's base rule that does not stand alone
        try:
            if id(item.rule) in unresolved:
                raise ValueError(unresolved[id(item.rule)])
            rules.append(_compile(item, views))
        except CONVERSION_ERRORS as exc:
            failures.append(RuleFailure(str(item.rule.id or item.path.stem),
                                        item.rule.title or item.path.name,
                                        source_of(item.path), one_line(exc)))
    return RuleSource("sigma", views, tuple(rules), tuple(failures))
