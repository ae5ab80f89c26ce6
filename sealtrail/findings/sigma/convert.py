"""Sigma detections -> DuckDB SQL over the ``sigma_events`` view.

The backend is pySigma's SQLite backend with the DuckDB differences made in a subclass instead
of rewriting its text (docs/rules-sigma.md says why this one and not pySigma-backend-duckdb):

* every string match is ``ILIKE ... ESCAPE '\\'`` over Sigma's converted pattern (Sigma
  matches case-insensitively; DuckDB's ``LIKE`` and ``=`` are case-sensitive, and a ``nocase``
  collation would also make ``|re`` case-insensitive);
* ``|cased`` is ``LIKE`` (case-sensitive), ``|re`` is ``regexp_matches`` (RE2, case-sensitive
  unless the rule says ``|re|i``);
* numbers compare through ``TRY_CAST(... AS BIGINT)``: EventData values are text, and a
  non-numeric value must not match (nor abort the query);
* a field is read as `fields.field_sql` says (typed column, view column or EventData key);
* keywords (values without a field) search ``message`` and the ``attributes`` text;
* ``not X`` is ``NOT coalesce((X), false)``: a field the event does not carry is NULL, and
  SQL's ``NOT NULL`` is NULL, which would drop the row where Sigma says the filter does not
  match (``selection and not filter`` must fire when the filter's field is absent).
"""

from __future__ import annotations

# ruff: noqa: S608 - this module writes SQL; rule values are quoted as SQL string literals
# (quotes doubled), field names checked against a name pattern, the rest our constants.
from typing import Any, ClassVar

from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionValueExpression,
)
from sigma.conversion.state import ConversionState
from sigma.rule import SigmaRule
from sigma.types import SigmaString

from sealtrail.findings.sigma.fields import field_sql


class DuckDBSigma(sqliteBackend):
    """pySigma's SQLite backend, speaking DuckDB over our view (one instance per rule)."""

    field_quote: ClassVar[str] = '"'
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    re_expression: ClassVar[str] = "regexp_matches({field}, '{regex}')"

    def __init__(self, *, windows: bool, needs: frozenset = frozenset()) -> None:
        super().__init__()
        self.windows = windows
        self.needs = needs

    def escape_and_quote_field(self, field_name: str) -> str:
        return field_sql(field_name, windows=self.windows, needs=self.needs)

    def _pattern(self, value: SigmaString) -> str:
        return self.convert_value_str(value, ConversionState(), no_quote=True)

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression,
                                           state: ConversionState) -> Any:
        return (f"{self.escape_and_quote_field(cond.field)} ILIKE "
                f"'{self._pattern(cond.value)}' ESCAPE '\\'")

    def convert_condition_field_eq_val_str_case_sensitive(
            self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> Any:
        return (f"{self.escape_and_quote_field(cond.field)} LIKE "
                f"'{self._pattern(cond.value)}' ESCAPE '\\'")

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression,
                                           state: ConversionState) -> Any:
        return f"TRY_CAST({self.escape_and_quote_field(cond.field)} AS BIGINT) = {cond.value}"

    def convert_condition_field_compare_op_val(self, cond: ConditionFieldEqualsValueExpression,
                                               state: ConversionState) -> Any:
        op = self.compare_operators[cond.value.op]
        return (f"TRY_CAST({self.escape_and_quote_field(cond.field)} AS BIGINT) {op} "
                f"{cond.value.number}")

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        inner = self.convert_condition(cond.args[0], state)
        if not isinstance(inner, str):
            raise NotImplementedError("a negated deferred (non-SQL) expression")
        return f"NOT coalesce(({inner}), false)"

    def _keyword(self, pattern: str) -> str:
        like = f"ILIKE '%{pattern}%' ESCAPE '\\'"
        return f"(message {like} OR CAST(attributes AS VARCHAR) {like})"

    def convert_condition_val_str(self, cond: ConditionValueExpression,
                                  state: ConversionState) -> Any:
        return self._keyword(self._pattern(cond.value))

    def convert_condition_val_num(self, cond: ConditionValueExpression,
                                  state: ConversionState) -> Any:
        return self._keyword(str(cond.value))


def detection_sql(rule: SigmaRule, *, windows: bool, needs: frozenset = frozenset()) -> str:
    """The WHERE condition of a rule's detection (its conditions OR-ed).

    Raises:
        SigmaError, NotImplementedError, UnknownField: the rule cannot be converted.
    """
    backend = DuckDBSigma(windows=windows, needs=needs)
    parts = []
    for cond in rule.detection.parsed_condition:
        result = backend.convert_condition(cond.parsed, ConversionState())
        if not isinstance(result, str):
            raise NotImplementedError("a deferred (non-SQL) expression")
        parts.append(f"({result})")
    return " OR ".join(parts)
