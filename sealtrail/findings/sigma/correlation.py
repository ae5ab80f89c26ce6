"""Sigma correlation rules (event_count, value_count, temporal) as DuckDB SQL.

pySigma's SQL backends emit one aggregate row per group (and the SQLite one uses ``julianday``
and ``rowid``); the engine needs the evidence rows. So the SQL is built here:

1. ``base``: the rows of every referenced rule (its route and detection), with the group-by
   fields (through the correlation's aliases), the counted field, and which rule matched;
2. ``win``: per group, a window over the preceding ``timespan`` counts rows (event_count),
   distinct values (value_count) or distinct rules (temporal) ending at each row;
3. the rows of ``base`` inside any window that meets the condition are the evidence, with
   ``group_key`` = ``field=value`` of the group-by fields.

``temporal_ordered`` and the value_sum/avg/percentile/median types, and extended (boolean)
conditions over rules, fail with that reason.
"""

from __future__ import annotations

# ruff: noqa: S608 - this module writes SQL; rule values are quoted as SQL string literals
# (quotes doubled), field names checked against a name pattern, the rest our constants.
from collections.abc import Callable

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from sealtrail.findings.sigma.fields import field_sql, sql_literal
from sealtrail.findings.sigma.logsource import Route

_OPS = {
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.EQ: "=",
    SigmaCorrelationConditionOperator.NEQ: "<>",
}
_MEASURE = {
    SigmaCorrelationType.EVENT_COUNT: "count(*)",
    SigmaCorrelationType.VALUE_COUNT: "count(DISTINCT v)",
    SigmaCorrelationType.TEMPORAL: "count(DISTINCT r)",
}

EventSql = Callable[[SigmaRule], tuple[Route, str]]


def _field_for(corr: SigmaCorrelationRule, name: str, ref, windows: bool) -> str:
    alias = corr.aliases.aliases.get(name)
    if alias is not None:
        for reference, field_name in alias.mapping.items():
            if reference.reference in (ref.reference, getattr(ref.rule, "name", None),
                                       str(ref.rule.id)):
                name = field_name
                break
    return f"CAST({field_sql(name, windows=windows)} AS VARCHAR)"


def _base(corr: SigmaCorrelationRule, event_sql: EventSql) -> tuple[str, list[Route]]:
    groups = corr.group_by or []
    selects, routes = [], []
    for i, ref in enumerate(corr.referenced_rules):
        rule = ref.rule
        if not isinstance(rule, SigmaRule):
            raise NotImplementedError("a correlation over a correlation")
        where, detection = event_sql(rule)
        routes.append(where)
        keys = [f"{sql_literal(g + '=')} || coalesce({_field_for(corr, g, ref, where.windows)}, '')"
                for g in groups]
        key = " || ', ' || ".join(keys) if keys else "NULL::VARCHAR"
        fieldref = corr.condition.fieldref
        value = (_field_for(corr, fieldref, ref, where.windows)
                 if isinstance(fieldref, str) else "NULL::VARCHAR")
        selects.append(f'SELECT event_uid, ts, host, "user", src_ip, {key} AS group_key, '
                       f"{value} AS v, {i} AS r FROM {where.view} WHERE {detection}")
    return " UNION ALL ".join(selects), routes


def correlation_sql(corr: SigmaCorrelationRule,
                    event_sql: EventSql) -> tuple[str, list[Route]]:
    """SQL returning the evidence rows of the groups that meet the correlation's condition.

    Raises:
        NotImplementedError: a type or condition this module does not build.
    """
    if corr.type not in _MEASURE:
        raise NotImplementedError(f"correlation type {corr.type.name.lower()} is not supported")
    if not isinstance(corr.condition, SigmaCorrelationCondition):
        raise NotImplementedError("extended correlation conditions are not supported")
    if corr.type is SigmaCorrelationType.VALUE_COUNT and not isinstance(
            corr.condition.fieldref, str):
        raise NotImplementedError("value_count needs one condition field")
    base, routes = _base(corr, event_sql)
    condition = corr.condition  # temporal without one: pySigma's "gte: number of rules"
    span = f"INTERVAL {int(corr.timespan.seconds)} SECOND"
    measure = _MEASURE[corr.type]
    sql = (
        f"WITH base AS ({base}), "
        f"win AS (SELECT group_key, ts, {measure} OVER (PARTITION BY group_key ORDER BY ts "
        f"RANGE BETWEEN {span} PRECEDING AND CURRENT ROW) AS n FROM base), "
        f"hits AS (SELECT DISTINCT group_key, ts AS end_ts FROM win "
        f"WHERE n {_OPS[condition.op]} {int(condition.count)}) "
        f'SELECT DISTINCT b.event_uid, b.ts, b.host, b."user" AS user_name, b.src_ip, '
        f"b.group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, "
        f"NULL::BIGINT AS line_no FROM base AS b JOIN hits AS h "
        f"ON b.group_key IS NOT DISTINCT FROM h.group_key "
        f"AND b.ts BETWEEN h.end_ts - {span} AND h.end_ts")
    return sql, routes
