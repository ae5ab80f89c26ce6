"""EVTX records in SQL: ``evtx_windows._to_event`` and the rule table ``evtx_fields.RULES``
compiled into one DuckDB SELECT. Pure Python, no third-party imports: this module writes SQL
text, ``store`` runs it.

The SELECT reads a relation of ``(member, record_id, data)`` rows, ``data`` being the JSON text
the ``evtx`` crate gives for one record, and yields for each row the ``events`` columns exactly
as the Python path makes them (``_to_event(parse_json(data), record_id, "evtx")``, then the
worker's checks and row conversion; ``attributes`` as equal JSON, not equal text), plus:

- ``outcome``: ``'ok'`` (a row for ``events``), ``'rejected'`` (``reason`` says why, in the
  Python path's words; the record belongs in ``ingest_errors``) or ``'python'``: a record this
  SQL does not reproduce exactly, which the caller hands to the Python path itself; ``data``
  is NULL except for those.
- ``reason``: the rejection reason, else NULL.

How it stays fast: one JSON parse per record (a multi-path ``json_extract`` of the System fields
and of the EventData/UserData text), then one multi-path ``json_extract_string`` of the keys the
record's rule reads from that (smaller) text. When the data holds no nested value (most does),
a value's ``_text`` is that extracted text, stripped as Python strips only where it starts or
ends with whitespace, and None for '', '-' and '%%1793'; other data takes the exact path (its
values as JSON fragments: ``#text`` objects, lists). Everything else is CASE, list indexing and
columns computed once, never a lambda per value on the common path (DuckDB runs lambdas far
slower than column expressions here). No per-event SQL is written by hand: rules, columns,
``user`` and messages are generated from ``RULES``.

What goes to Python (``outcome = 'python'``): records for which reproducing Python would cost
more than it is worth and which the ``evtx`` crate rarely or never writes. Each is decided
before any rejection, so the Python path decides the whole outcome of such a record:

1. text DuckDB's JSON reader refuses, and text it reads but ``orjson`` refuses: nesting deeper
   than 1,024, and the tokens ``NaN``/``inf``/``-inf`` with which the crate writes non-finite
   floats (with ``check_nonfinite``; without it, only where they stand in EventData/UserData or
   in the System fields read);
2. a number with a fraction or an exponent, or an integer outside the 64-bit range (orjson
   reads it as a float), in the System fields read or anywhere in EventData/UserData (Python
   prints floats with ``repr``); an EventID that is a list;
3. TimeCreated text other than ``YYYY-MM-DDTHH:MM:SS[.fraction]Z``, or a date that does not
   exist (Python's rejection quotes it with ``repr``);
4. a Provider name, Channel, Computer or Security UserID that is an object or a list (Python
   prints its ``repr``);
5. rule values nested deeper than ``{"#text": [scalars]}``, and text an integer column reads
   that Python's ``int()`` might take where the expressions here do not (non-ASCII digits,
   numbers of more than 32 characters);
6. a key repeated in EventData/UserData (the flat data): Python keeps the last value, DuckDB
   reads the first; the ``evtx`` crate (0.13 inside ``evtx`` 0.14.0) writes a template's
   repeated Data name twice (4648 events of one upstream log carry LogonGuid twice).

One difference is deliberate: a key repeated anywhere else (two EventID or Channel elements in
System, two Event or System members, two ``#text`` in one value) is read first-wins here and
last-wins by Python. The EVTX schema fixes those elements, so only a crafted log repeats them,
and finding them would cost a second parse of every record.

Whitespace follows Python: ``str.strip``/``str.split`` whitespace (``_PY_SPACE``) and
``str.splitlines`` line ends; lengths and slices count code points, as DuckDB's
``length``/``left`` do.
"""

# ruff: noqa: S608 - this module writes SQL: from RULES, the schema and constants; the data
# it reads enters only as the column values of the relation it is given
from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from sealtrail.analysis.parsers.evtx_fields import EVENT_COLUMNS as RULE_COLUMNS
from sealtrail.analysis.parsers.evtx_fields import (
    RULES,
    SUMMARY_LIMIT,
    Account,
    ContextLine,
    FirstRaw,
    Int,
    Node,
    Port,
    Rule,
    Text,
    WhenPresent,
)
from sealtrail.analysis.schema import EVENT_COLUMNS

OK, REJECTED, PYTHON = "ok", "rejected", "python"
PARSER = "evtx"  # the ``parser`` column and the prefix of its rejection reasons
MAX_SAFE_INT = 2**53 - 1  # evtx_windows._json_safe turns integers beyond it into strings
INT32 = (-(2**31), 2**31 - 1)
ORJSON_INTS = (-(2**63), 2**64 - 1)  # JSON integers orjson reads as int; beyond: as a float
GENERIC_SCAN = 8  # data entries the generic summary reads as columns (it wants four parts)
PROVENANCE = ("host", "source", "bundle_id", "member_path", "member_sha256", "parser_version")

# Python's str.isspace() characters: what str.strip() removes and str.split() splits on.
_PY_SPACE = [c for c in range(0x110000) if chr(c).isspace()]
# str.splitlines() boundaries.
_PY_LINE_ENDS = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"

# What the one parse of each record reads.
_ROOT = {
    "f_time": '$.Event.System.TimeCreated."#attributes".SystemTime',
    "f_eid": "$.Event.System.EventID",
    "f_channel": "$.Event.System.Channel",
    "f_computer": "$.Event.System.Computer",
    "f_provider": '$.Event.System.Provider."#attributes".Name',
    "f_uid": '$.Event.System.Security."#attributes".UserID',
    "f_event_data": "$.Event.EventData",
    "f_user_data": "$.Event.UserData",
}


def lit(text: str) -> str:
    """A SQL string literal."""
    if "\x00" in text:
        raise ValueError("NUL in a SQL literal")
    return "'" + text.replace("'", "''") + "'"


_STRING = r'"(?:[^"\\]|\\.)*"'  # a JSON string token, for RE2


def _char_class(codes: list[int]) -> str:
    """An RE2 character class of code points, runs written as ranges."""
    runs: list[list[int]] = []
    for c in codes:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "[" + "".join(f"\\x{{{a:x}}}" + (f"-\\x{{{b:x}}}" if b > a else "")
                         for a, b in runs) + "]"


_SPACE = _char_class(_PY_SPACE)
_RE = {
    "tokens": f"(?s){_STRING}|[^\"]+",  # a JSON text as its strings and what lies between
    # the crate's non-finite tokens outside strings, found from the start string by string
    "nonfinite": f'(?s)^(?:[^"]|{_STRING})*?[:,\\[]-?(?:NaN|inf)',
    # maybe a float, a long integer or a non-finite token as a value, or an array (in this
    # compact text a member's value follows '":'); then looked at exactly
    "maybe_numbers": r'":-?(?:[0-9]+[.eE]|[0-9]{16}|NaN|inf)|":\[',
    "single_child": f"^[{{]{_STRING}:[{{]",
    # TimeCreated as the crate writes it (6 digits) and as forwarded events hold it (any;
    # Python keeps the first 6)
    "time": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
            r"(?:\.[0-9]+)?Z",
    "strip": f"^{_SPACE}+|{_SPACE}+$",
    "ends": f"^{_SPACE}|{_SPACE}$",
    "missing": f"{_SPACE}*(?:-|%%1793)?{_SPACE}*",  # strips to '', '-' or '%%1793'
    "space_run": f"{_SPACE}+",
    "decimal": "[+-]?[0-9]+(?:_[0-9]+)*",
    "hex": "0[xX](?:_?[0-9a-fA-F])+",
}
_R = {name: lit(pattern) for name, pattern in _RE.items()}


# -- expressions over JSON fragments (json_extract's text: strings still quoted) -------------


def _null(f: str) -> str:
    return f"({f} IS NULL OR {f} = 'null')"


def _starts(f: str, first: str) -> str:
    return f"starts_with({f}, {lit(first)})"


def _is_str(f: str) -> str:
    return _starts(f, '"')


def _nested(f: str) -> str:
    return f"({_starts(f, '{')} OR {_starts(f, '[')})"


def _unquote(f: str) -> str:
    return f"json_extract_string({f}, '$')"


def _strip(s: str) -> str:
    """``str.strip()``."""
    return f"regexp_replace({s}, {_R['strip']}, '', 'g')"


def _missing(s: str) -> str:
    """``_text`` of a string: stripped; '', '-' and '%%1793' are None."""
    return (f"CASE WHEN {s} IN ('', '-', '%%1793') THEN NULL "
            f"WHEN NOT regexp_matches({s}, {_R['ends']}) THEN {s} "
            f"WHEN regexp_full_match({s}, {_R['missing']}) THEN NULL ELSE {_strip(s)} END")


def _text0(f: str) -> str:
    """``evtx_fields._text`` of a scalar fragment (a string, an integer, true/false, null)."""
    return (f"CASE WHEN {_null(f)} THEN NULL WHEN {_is_str(f)} THEN {_missing(_unquote(f))} "
            f"ELSE {f} END")


def _text_list(f: str) -> str:
    """``_text`` of a list of scalars: the texts that are not None, joined with ', '."""
    return (f"nullif(array_to_string(list_transform(json_extract({f}, '$[*]')::VARCHAR[], "
            f"lambda e: {_text0('e')}), ', '), '')")


def _hash_text(f: str) -> str:
    return f"json_extract({f}, '$.\"#text\"')::VARCHAR"


def _unwrap(f: str) -> str:
    """The fragment ``_text`` reads: an object's ``#text``, else the fragment itself."""
    return f"CASE WHEN {_starts(f, '{')} THEN {_hash_text(f)} ELSE {f} END"


def _string_of(v: str) -> str:
    """The content of a string fragment, else NULL."""
    return f"CASE WHEN {_is_str(v)} THEN {_unquote(v)} END"


def _text(v: str, u: str) -> str:
    """``evtx_fields._text`` of a fragment, given ``v = _unwrap(f)`` and ``u = _string_of(v)``
    as columns (each is used several times, and a column is computed once)."""
    return (f"CASE WHEN {u} IS NOT NULL THEN {_missing(u)} WHEN {_null(v)} THEN NULL "
            f"WHEN {_starts(v, '[')} THEN {_text_list(v)} ELSE {v} END")


def _scalars_only(f: str) -> str:
    return (f"coalesce(NOT list_bool_or(list_transform(json_extract({f}, '$[*]')::VARCHAR[], "
            f"lambda e: {_nested('e')})), true)")


def _supported(f: str, v: str) -> str:
    """True if ``_text`` is exact for fragment ``f`` (``v = _unwrap(f)``): a scalar, a list of
    scalars, or an object whose ``#text`` is one of those (floats go to Python per record)."""
    return (f"CASE WHEN NOT {_nested(f)} THEN true WHEN {_starts(f, '[')} THEN {_scalars_only(f)} "
            f"WHEN {v} IS NULL OR NOT {_nested(v)} THEN true "
            f"WHEN {_starts(v, '[')} THEN {_scalars_only(v)} ELSE false END")


def _truthy(f: str) -> str:
    """Python truthiness of a fragment's value (floats go to Python per record)."""
    return f"({f} IS NOT NULL AND {f} NOT IN ('null', '\"\"', '0', 'false', '{{}}', '[]'))"


def _int_text(t: str) -> str:
    """``evtx_fields._int`` of a value whose ``_text`` is ``t``: ``int(t)``, or ``int(t, 16)``
    after '0x' (``_int`` of an int is ``int(str(value))`` and of a bool None, which is what
    this gives for their texts too); NULL where Python gives None, or where
    ``_int_text_exact`` sends the record to Python."""
    return (f"CASE WHEN {t} IS NULL OR strlen({t}) > 32 THEN NULL "
            f"WHEN regexp_full_match({t}, {_R['decimal']}) THEN CAST({t} AS HUGEINT) "
            f"WHEN regexp_full_match({t}, {_R['hex']}) "
            f"THEN CAST('0x' || replace(substr({t}, 3), '_', '') AS HUGEINT) END")


def _int_text_exact(t: str) -> str:
    """False where Python's ``int()`` could read ``t`` otherwise than ``_int_text`` does."""
    return (f"CASE WHEN {t} IS NULL THEN true "
            f"WHEN strlen({t}) <> length({t}) AND regexp_matches({t}, '\\p{{Nd}}') THEN false "
            f"WHEN strlen({t}) > 32 AND regexp_full_match({t}, "
            f"{lit(_RE['decimal'] + '|' + _RE['hex'])}) THEN false ELSE true END")


def _py_str(f: str) -> str:
    """``str(value)`` of a System value: a string as it is, an integer, True/False."""
    return (f"CASE WHEN {_null(f)} THEN NULL WHEN {_is_str(f)} THEN {_unquote(f)} "
            f"WHEN {f} = 'true' THEN 'True' WHEN {f} = 'false' THEN 'False' ELSE {f} END")


def _orjson_int(f: str) -> str:
    """True if the fragment is a JSON integer orjson reads as an int: one in the 64-bit range
    (a longer one it reads as a float, and Python prints that with ``repr``)."""
    return (f"CASE WHEN regexp_full_match({f}, '-?[0-9]{{1,20}}') THEN CAST({f} AS HUGEINT) "
            f"BETWEEN {ORJSON_INTS[0]} AND {ORJSON_INTS[1]} ELSE false END")


def _py_str_ok(f: str) -> str:
    """True if ``_py_str`` is exact: null, a string, an integer or true/false."""
    return (f"CASE WHEN {_null(f)} OR {_is_str(f)} OR {f} IN ('true', 'false') THEN true "
            f"ELSE {_orjson_int(f)} END")


# -- the rules -----------------------------------------------------------------------------


def _node_names(node: Node) -> list[str]:
    if isinstance(node, Text | FirstRaw):
        return list(node.names)
    if isinstance(node, Int | Port):
        return [node.name]
    if isinstance(node, Account):
        return [node.domain, node.name]
    if isinstance(node, ContextLine):
        return [node.field]
    if isinstance(node, WhenPresent):
        return [node.name, *_node_names(node.then), *_node_names(node.otherwise)]
    raise TypeError(f"no SQL for {type(node).__name__}")


def _int_nodes(node: Node) -> Iterator[Int | Port]:
    if isinstance(node, Int | Port):
        yield node
    elif isinstance(node, WhenPresent):
        yield from _int_nodes(node.then)
        yield from _int_nodes(node.otherwise)


def _template(summary: str) -> list[tuple[str, str | None]]:
    """(literal, field) pairs of a ``str.format`` template; only plain field names."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(summary):
        if name is not None and (spec or conversion or not name.isidentifier()):
            raise ValueError(f"template field {name!r} of {summary!r}: only plain names")
        out.append((literal, name))
    return out


def _rule_keys(rule: Rule) -> tuple[str, ...]:
    """The data keys a rule reads: its nodes' fields, then the other names in its template
    (a column's name in a template prints the data value of that name only when the column
    is empty: ``_fill_missing``)."""
    names: list[str] = []
    for node in rule.columns.values():
        names += _node_names(node)
    names += [f for _, f in _template(rule.summary)
              if f is not None and f != "eid" and f not in rule.columns]
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"data key {name!r} is not a plain name")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class _Rules:
    """RULES numbered; rules that read the same keys share one key group."""

    rules: list[tuple[int, str, int, Rule]]  # (number, channel, event id, rule)
    groups: list[tuple[str, ...]]  # group g reads groups[g - 1], in that order
    group_of: dict[int, int]  # rule number -> group number


def _number_rules() -> _Rules:
    rules, groups, group_of = [], [], {}
    index: dict[tuple[str, ...], int] = {}
    for n, ((channel, event_id), rule) in enumerate(RULES.items(), 1):
        rules.append((n, channel, event_id, rule))
        keys = _rule_keys(rule)
        if keys not in index:
            groups.append(keys)
            index[keys] = len(groups)
        group_of[n] = index[keys]
    return _Rules(rules, groups, group_of)


class _Key:
    """SQL for the data value at position ``i`` of a rule's keys. ``simple`` rows (no nested
    value in their data) read ``r`` (``json_extract_string``: a string's content, or an
    integer's or a boolean's text, which is their ``_text`` before stripping), the others
    ``f`` (JSON fragments); ``t{i}`` is the ``_text`` either way."""

    def __init__(self, i: int, key: str) -> None:
        self.i, self.key = i, key

    @property
    def text(self) -> str:
        return f"t{self.i}"

    @property
    def present(self) -> str:  # data.get(key) is not None
        return f"CASE WHEN simple THEN r[{self.i}] IS NOT NULL ELSE NOT {_null(f'f[{self.i}]')} END"

    @property
    def truthy(self) -> str:
        # '0' and 'false' are falsy as a number and a boolean, truthy as strings
        fragment = f"json_extract(flat, {lit(_key_path(self.key))})::VARCHAR"
        r = f"r[{self.i}]"
        return (f"CASE WHEN NOT simple THEN {_truthy(f'f[{self.i}]')} "
                f"WHEN {r} IS NULL OR {r} = '' THEN false "
                f"WHEN {r} IN ('0', 'false') THEN {_is_str(fragment)} ELSE true END")

    @property
    def nested(self) -> str:
        return f"CASE WHEN simple THEN false ELSE coalesce({_nested(f'f[{self.i}]')}, false) END"


def _fill_missing(name: str, rules: set[int], count: int) -> str:
    """``_Fill.__missing__`` for a column name a rule's template prints when the column is
    empty: the data value of that name, which data rarely has (so it is looked up only if the
    data's text holds the quoted key); NULL where the template does not need it."""
    uses = "[" + ", ".join("true" if n in rules else "false" for n in range(1, count + 1)) + "]"
    g = f"json_extract(flat, {lit(_key_path(name))})::VARCHAR"
    return (f"CASE WHEN col_{name} IS NOT NULL OR NOT coalesce({uses}[rule], false) THEN NULL "
            f"WHEN NOT contains(flat, {lit(chr(34) + name + chr(34))}) THEN '?' "
            f"WHEN {_nested(g)} THEN '?' ELSE {_text0(g)} END")


def _key_path(key: str) -> str:
    return f'$."{key}"'


def _node_sql(node: Node, key: Callable[[str], _Key]) -> str:
    """A node's value."""
    if isinstance(node, Text):
        texts = [key(n).text for n in node.names]
        return texts[0] if len(texts) == 1 else "coalesce(" + ", ".join(texts) + ")"
    if isinstance(node, FirstRaw):
        whens = " ".join(f"WHEN {key(n).truthy} THEN {key(n).text}" for n in node.names)
        return f"CASE {whens} ELSE {key(node.names[-1]).text} END"
    if isinstance(node, Int):
        return _int_text(key(node.name).text)
    if isinstance(node, Port):
        value = _int_text(key(node.name).text)
        return f"CASE WHEN ({value}) BETWEEN 1 AND 65535 THEN {value} END"
    if isinstance(node, Account):
        user, domain = key(node.name).text, key(node.domain).text
        return (f"CASE WHEN {user} IS NULL THEN NULL WHEN {domain} IS NOT NULL "
                f"THEN {domain} || '\\' || {user} ELSE {user} END")
    if isinstance(node, ContextLine):
        # the first line whose name (before '=', stripped) is the key, even if its value is
        # empty; lists of one, so that an empty value still counts as found
        eq = lit("=")
        line = (f"CASE WHEN strpos(l, {eq}) > 0 AND {_strip(f'split_part(l, {eq}, 1)')} = "
                f"{lit(node.key)} THEN [{_strip(f'substr(l, strpos(l, {eq}) + 1)')}] END")
        hits = (f"list_filter(list_transform(regexp_split_to_array({key(node.field).text}, "
                f"{lit(_PY_LINE_ENDS)}), lambda l: {line}), lambda h: h IS NOT NULL)")
        return f"nullif(({hits})[1][1], '')"
    if isinstance(node, WhenPresent):
        then, otherwise = _node_sql(node.then, key), _node_sql(node.otherwise, key)
        return f"CASE WHEN {key(node.name).present} THEN {then} ELSE {otherwise} END"
    raise TypeError(f"no SQL for {type(node).__name__}")


@dataclass
class _Variants:
    """Distinct SQL expressions for one output, and which rules use which."""

    exprs: dict[str, int] = field(default_factory=dict)  # SQL -> variant number
    of_rule: dict[int, int] = field(default_factory=dict)  # rule number -> variant number

    def add(self, rule: int, expr: str) -> None:
        self.of_rule[rule] = self.exprs.setdefault(expr, len(self.exprs) + 1)

    def sql(self, rules: int, default: str = "NULL") -> str:
        """CASE on the variant, found by indexing a constant list with the rule number."""
        if not self.exprs:
            return default
        lookup = "[" + ", ".join(str(self.of_rule.get(n, 0)) for n in range(1, rules + 1)) + "]"
        whens = " ".join(f"WHEN {v} THEN {expr}" for expr, v in self.exprs.items())
        return f"CASE {lookup}[rule] {whens} ELSE {default} END"


@dataclass
class _PerRule:
    columns: dict[str, _Variants]
    # a column name in a template -> the rules whose message prints it (the data value of that
    # name stands in when the column is empty: _fill_missing)
    fills: dict[str, set[int]] = field(default_factory=dict)
    user: _Variants = field(default_factory=_Variants)
    message: _Variants = field(default_factory=_Variants)
    event_type: _Variants = field(default_factory=_Variants)
    ints_exact: _Variants = field(default_factory=_Variants)


def _per_rule(numbered: _Rules) -> _PerRule:
    """Every rule's expressions. Each name a rule reads into (Event column or not, such as
    ``sysmon_user``) is one output column ``col_<name>``, which ``user`` and messages use."""
    names = sorted({name for _, _, _, rule in numbered.rules for name in rule.columns} - {"user"})
    out = _PerRule({name: _Variants() for name in names})
    for n, _channel, event_id, rule in numbered.rules:
        keys = numbered.groups[numbered.group_of[n] - 1]

        def key(name: str, keys: tuple[str, ...] = keys) -> _Key:
            return _Key(keys.index(name) + 1, name)

        for name, node in rule.columns.items():
            out.columns[name].add(n, _node_sql(node, key))
        if rule.user is not None and rule.user in rule.columns:
            out.user.add(n, f"col_{rule.user}")
        exact = [_int_text_exact(key(node.name).text)
                 for column in rule.columns.values() for node in _int_nodes(column)]
        if exact:
            out.ints_exact.add(n, " AND ".join(exact))
        pieces = []
        for literal, name in _template(rule.summary):
            if literal:
                pieces.append(lit(literal))
            if name == "eid":
                pieces.append(lit(str(event_id)))
            elif name in rule.columns:
                out.fills.setdefault(name, set()).add(n)
                pieces.append(f"coalesce(CAST(col_{name} AS VARCHAR), fm_{name}, '?')")
            elif name is not None:
                k = key(name)
                pieces.append(f"CASE WHEN {k.nested} THEN '?' ELSE coalesce({k.text}, '?') END")
        out.message.add(n, " || ".join(pieces) or "''")
        out.event_type.add(n, lit(rule.event_type))
    return out


# -- the statement -------------------------------------------------------------------------


def _columns(exprs: Mapping[str, str], inner: str) -> str:
    return "SELECT *, " + ", ".join(f"{e} AS {n}" for n, e in exprs.items()) + f" FROM ({inner})"


def select_sql(source: str, provenance: Mapping[str, str], *,
               check_nonfinite: bool = True) -> str:
    """The SELECT over ``source``: a FROM item with ``member``, ``record_id`` and ``data``.

    Args:
        source: e.g. ``read_parquet([...]) s JOIN members m USING (member)``.
        provenance: SQL expressions (over ``source``) for the columns in ``PROVENANCE``.
        check_nonfinite: look for the crate's NaN/inf tokens anywhere in the text (orjson
            refuses them, so the Python path rejects such a record): two substring scans of
            every record's text.

    Returns:
        SQL yielding ``member``, ``record_id``, ``data`` (for ``'python'`` rows only), the
        ``events`` columns in schema order, ``outcome`` and ``reason``.
    """
    if set(provenance) != set(PROVENANCE):
        raise ValueError(f"provenance needs exactly {PROVENANCE}")
    numbered = _number_rules()
    per_rule = _per_rule(numbered)
    paths = "[" + ", ".join(map(lit, _ROOT.values())) + "]"

    # 1. one parse: the System fragments and the EventData/UserData text
    layer = ("SELECT member, record_id, data, "
             + ", ".join(f"{expr} AS {name}" for name, expr in provenance.items())
             + f", TRY(json_extract(data, {paths}))::VARCHAR[] AS j FROM {source}")
    layer = _columns({name: f"j[{i}]" for i, name in enumerate(_ROOT, 1)}, layer)
    ed, ud = "f_event_data", "f_user_data"
    # CASE, not AND, wherever the right side costs: DuckDB evaluates both sides of an AND in
    # a projection, but the THEN of a CASE only for the rows its WHEN selects
    nonfinite = (f"CASE WHEN contains(data, 'NaN') OR contains(data, 'inf') "
                 f"THEN regexp_matches(data, {_R['nonfinite']}) ELSE false END"
                 if check_nonfinite else "false")
    deep = ("CASE WHEN strlen(data) > 2048 THEN strlen(data) - strlen(replace(replace(data, "
            "'{', ''), '[', '')) > 1024 ELSE false END")
    layer = _columns({
        "body": f"CASE WHEN NOT {_null(ed)} THEN {ed} WHEN NOT {_null(ud)} THEN {ud} END",
        "body_key": (f"CASE WHEN NOT {_null(ed)} THEN 'EventData' "
                     f"WHEN NOT {_null(ud)} THEN 'UserData' END"),
        "bad_text": f"(j IS NULL OR {deep} OR {nonfinite})",
        "eid_v": _unwrap("f_eid"),
    }, layer)

    # 2. System values, the flat data, the body's numbers, the timestamp
    channel_text = _hash_text("f_channel")
    single = "json_extract(body, '$.*')[1]::VARCHAR"
    layer = _columns({
        "ts_text": f"CASE WHEN {_is_str('f_time')} THEN {_unquote('f_time')} END",
        "provider": _py_str("f_provider"),
        "channel": (f"CASE WHEN {_starts('f_channel', '{')} THEN {_py_str(channel_text)} "
                    f"ELSE {_py_str('f_channel')} END"),
        "computer": _py_str("f_computer"),
        "user_id": f"CASE WHEN {_truthy('f_uid')} THEN {_py_str('f_uid')} END",
        "eid_u": _string_of("eid_v"),
        # _flat: the only value of a one-key dict when that value is a dict without #text
        "flat": (f"CASE WHEN NOT {_starts('body', '{')} THEN NULL "
                 f"WHEN regexp_matches(body, {_R['single_child']}) AND len(json_keys(body)) = 1 "
                 f"AND NOT json_exists({single}, '$.\"#text\"') THEN {single} ELSE body END"),
        "body_tokens": (f"CASE WHEN regexp_matches(body, {_R['maybe_numbers']}) OR NOT "
                        f"({_starts('body', '{')} OR {_is_str('body')}) "
                        f"THEN regexp_extract_all(body, {_R['tokens']}) END"),
        "system_ok": (f"({_py_str_ok('f_provider')} AND CASE WHEN {_starts('f_channel', '{')} "
                      f"THEN {_py_str_ok(channel_text)} ELSE {_py_str_ok('f_channel')} END "
                      f"AND {_py_str_ok('f_computer')} AND (NOT {_truthy('f_uid')} OR "
                      f"{_py_str_ok('f_uid')}) AND {_supported('f_eid', 'eid_v')} "
                      # a float (repr) or a list (of what?) as the EventID: Python decides
                      f"AND CASE WHEN eid_v IS NULL THEN true WHEN {_starts('eid_v', '[')} "
                      f"THEN false WHEN regexp_matches(eid_v, '^-?[0-9]') "
                      f"THEN {_orjson_int('eid_v')} ELSE true END)"),
    }, layer)
    layer = _columns({
        "eid_text": _text("eid_v", "eid_u"),
        "outside": (f"array_to_string(list_filter(body_tokens, lambda x: NOT "
                    f"{_is_str('x')}), ' ')"),
        # no nested value in the data (in this compact text a member's value follows '":')
        "simple": ("CASE WHEN flat IS NULL THEN true ELSE NOT (contains(flat, '\":{') "
                   "OR contains(flat, '\":[')) END"),
        "data_keys": "CASE WHEN flat IS NOT NULL THEN json_keys(flat) END",
    }, layer)
    # a key twice in the data: Python keeps the last value (at the first key's place), DuckDB
    # reads the first; the evtx crate writes such data when a template repeats a Data name
    layer = _columns({"repeated_key": "coalesce(len(data_keys) <> list_unique(data_keys), false)"},
                     layer)
    numbers = "regexp_extract_all(outside, '-?[0-9]+')"
    layer = _columns({
        "event_id": _int_text("eid_text"),
        "ts_value": (f"CASE WHEN regexp_full_match(ts_text, {_R['time']}) AND NOT "
                     f"starts_with(ts_text, '0000') THEN TRY_CAST(CASE WHEN strlen(ts_text) "
                     f"<= 27 THEN ts_text ELSE regexp_replace(ts_text, "
                     f"'([.][0-9]{{6}})[0-9]+Z$', '\\1Z') END AS TIMESTAMPTZ) END"),
        # floats and non-finite tokens go to Python; integers beyond 2**53 become strings
        # floats, non-finite tokens and integers orjson reads as floats go to Python;
        # integers beyond 2**53 become strings (_json_safe)
        "body_numbers": (f"CASE WHEN body_tokens IS NULL THEN 'plain' "
                         f"WHEN regexp_matches(outside, '[0-9][.eE]|NaN|inf') OR "
                         f"list_bool_or(list_transform({numbers}, lambda n: NOT "
                         f"({_orjson_int('n')}))) THEN 'float' "
                         f"WHEN list_bool_or(list_transform({numbers}, lambda n: "
                         f"abs(CAST(n AS HUGEINT)) > {MAX_SAFE_INT})) THEN 'big' "
                         f"ELSE 'plain' END"),
    }, layer)

    # 3. the rule, and the values it reads: json_extract_string on the fast path, fragments
    # on the exact path; an unmapped event reads its data's values in order instead
    by_channel: dict[str, list[str]] = {}
    for n, channel, event_id, rule in numbered.rules:
        cond = f"event_id = {event_id}"
        if rule.providers is not None:
            cond += " AND provider IN (" + ", ".join(map(lit, sorted(rule.providers))) + ")"
        by_channel.setdefault(channel, []).append(f"WHEN {cond} THEN {n}")
    layer = _columns({"rule": "CASE " + " ".join(
        f"WHEN channel = {lit(ch)} THEN CASE {' '.join(whens)} END"
        for ch, whens in by_channel.items()) + " END"}, layer)
    group_of = ("[" + ", ".join(str(numbered.group_of[n]) for n in range(1, len(numbered.rules)
                                                                          + 1)) + "]")
    layer = _columns({"grp": f"{group_of}[rule]"}, layer)

    def extract(function: str) -> str:
        whens = " ".join(
            f"WHEN {g} THEN {function}(flat, [{', '.join(lit(_key_path(k)) for k in keys)}])"
            if keys else f"WHEN {g} THEN []::VARCHAR[]"
            for g, keys in enumerate(numbered.groups, 1))
        return (f"CASE WHEN flat IS NULL THEN NULL WHEN rule IS NULL THEN "
                f"{function}(flat, '$.*')::VARCHAR[] ELSE (CASE grp {whens} END)::VARCHAR[] END")

    layer = _columns({
        "r": f"CASE WHEN simple THEN {extract('json_extract_string')} END",
        "f": f"CASE WHEN NOT simple THEN {extract('json_extract')} END",
        "gk": "CASE WHEN rule IS NULL THEN data_keys END",
    }, layer)
    width = max(GENERIC_SCAN, *(len(keys) for keys in numbered.groups))
    positions = range(1, width + 1)

    # positions beyond the row's keys are skipped at the cost of one comparison
    widths = "[" + ", ".join(str(len(keys)) for keys in numbered.groups) + "]"
    layer = _columns({"width": (f"CASE WHEN grp IS NOT NULL THEN {widths}[grp] "
                                f"WHEN gk IS NOT NULL THEN len(gk) ELSE 0 END")}, layer)
    # the exact path's unwrapped fragments and their string contents (NULL on the fast path)
    exact = "NOT simple AND width >= "
    layer = _columns({f"v{i}": f"CASE WHEN {exact}{i} THEN {_unwrap(f'f[{i}]')} END"
                      for i in positions}, layer)
    layer = _columns({f"u{i}": f"CASE WHEN {exact}{i} THEN {_string_of(f'v{i}')} END"
                      for i in positions}, layer)
    texts = {f"t{i}": (f"CASE WHEN width < {i} THEN NULL WHEN simple THEN {_missing(f'r[{i}]')} "
                       f"ELSE {_text(f'v{i}', f'u{i}')} END") for i in positions}
    texts["f_ok"] = ("CASE WHEN simple OR rule IS NULL THEN true ELSE ("
                     + " AND ".join(_supported(f"f[{i}]", f"v{i}") for i in positions) + ") END")
    layer = _columns(texts, layer)

    # 4. columns, user, message and event type; the generic summary for unmapped events:
    # the first four "key=text" parts, from the first GENERIC_SCAN entries' columns, and
    # from the rest (a lambda, slower) only where those did not give four
    def part(k: str, nested: str, text: str) -> str:
        return (f"CASE WHEN starts_with({k}, '#') OR {nested} THEN NULL "
                f"ELSE {k} || '=' || {text} END")

    first = "[" + ", ".join(part(f"gk[{i}]", _Key(i, "").nested, f"t{i}")
                            for i in range(1, GENERIC_SCAN + 1)) + "]"
    start = GENERIC_SCAN + 1
    fast_rest = (f"list_transform(list_zip(gk[{start}:], r[{start}:]), lambda z: "
                 + part("z[1]", "false", _missing("z[2]")) + ")")
    exact_rest = (f"list_transform(list_zip(gk[{start}:], f[{start}:]), lambda z: "
                  + part("z[1]", f"coalesce({_nested('z[2]')}, false)", _text0("z[2]")) + ")")
    rest = f"CASE WHEN simple THEN {fast_rest} ELSE {exact_rest} END"
    found = "list_filter(first_parts, lambda p: p IS NOT NULL)"
    layer = _columns({"first_parts": f"CASE WHEN gk IS NOT NULL THEN {first} END"}, layer)
    layer = _columns({"parts": (
        f"CASE WHEN gk IS NULL THEN [] WHEN len(gk) <= {GENERIC_SCAN} OR len({found}) >= 4 "
        f"THEN {found} ELSE list_filter(list_concat(first_parts, {rest}), "
        f"lambda p: p IS NOT NULL) END")}, layer)
    generic = ("CASE WHEN event_id IS NULL THEN '?' ELSE CAST(event_id AS VARCHAR) END || ' ' "
               "|| coalesce(nullif(provider, ''), nullif(channel, ''), '?') || CASE WHEN "
               "len(parts) > 0 THEN ': ' || array_to_string(parts[1:4], ', ') ELSE '' END")
    rules = len(numbered.rules)
    layer = _columns({f"col_{name}": variants.sql(rules)
                      for name, variants in per_rule.columns.items()}, layer)
    layer = _columns({f"fm_{name}": _fill_missing(name, used, rules)
                      for name, used in sorted(per_rule.fills.items())}, layer)
    outputs = {
        "col_user": per_rule.user.sql(rules),
        "message_raw": (f"CASE WHEN rule IS NULL THEN {generic} "
                        f"ELSE {per_rule.message.sql(rules)} END"),
        "event_type": per_rule.event_type.sql(rules, lit("other")),
        "ints_exact": per_rule.ints_exact.sql(rules, "true"),
    }
    layer = _columns(outputs, layer)

    # 5. _shorten, attributes, outcome
    collapsed = f"trim(regexp_replace(message_raw, {_R['space_run']}, ' ', 'g'), ' ')"
    layer = _columns({"message1": (
        f"CASE WHEN contains(message_raw, chr(10)) OR contains(message_raw, chr(13)) "
        f"OR contains(message_raw, chr(9)) OR contains(message_raw, '  ') "
        f"THEN {collapsed} ELSE message_raw END")}, layer)
    python = ("bad_text OR NOT system_ok OR body_numbers = 'float' OR repeated_key OR NOT f_ok "
              f"OR NOT ints_exact OR NOT ({_int_text_exact('eid_text')}) "
              f"OR ({_is_str('f_time')} AND ts_text <> '' AND ts_value IS NULL)")
    low, high = INT32
    ranges = [("event_id", "event_id"), ("src_port", "col_src_port"),
              ("logon_type", "col_logon_type")]
    reason = (
        f"CASE WHEN f_time IS NULL THEN CASE WHEN json_type(data, '$.Event.System') = 'OBJECT' "
        f"THEN '{PARSER}: record has no TimeCreated/@SystemTime' "
        f"ELSE '{PARSER}: record has no Event/System' END "
        f"WHEN NOT {_is_str('f_time')} OR ts_text = '' "
        f"THEN '{PARSER}: record has no TimeCreated/@SystemTime' "
        f"WHEN ts_value < TIMESTAMPTZ '1970-01-01 00:00:00+00' "
        f"THEN '{PARSER}: TimeCreated ''' || ts_text || ''' is before 1970 (unset)' "
        + " ".join(f"WHEN {value} NOT BETWEEN {low} AND {high} THEN '{name} ' || "
                   f"CAST({value} AS VARCHAR) || ' is outside the range of the events column "
                   f"(INTEGER)'" for name, value in ranges)
        + " END")
    layer = _columns({
        "message": (f"CASE WHEN length(message1) <= {SUMMARY_LIMIT} THEN message1 "
                    f"ELSE left(message1, {SUMMARY_LIMIT - 3}) || '...' END"),
        "python": python,
    }, layer)
    layer = _columns({
        "reason": f"CASE WHEN python THEN NULL ELSE {reason} END",
    }, layer)
    layer = _columns({
        "outcome": (f"CASE WHEN python THEN '{PYTHON}' WHEN reason IS NOT NULL "
                    f"THEN '{REJECTED}' ELSE '{OK}' END"),
    }, layer)
    big = ("array_to_string(list_transform(body_tokens, lambda x: CASE WHEN starts_with(x, '\"') "
           "THEN x ELSE array_to_string(list_transform(regexp_extract_all(x, "
           "'-?[0-9]+|[^0-9-]+|-'), lambda y: CASE WHEN regexp_full_match(y, '-?[0-9]+') AND "
           f"abs(CAST(y AS HUGEINT)) > {MAX_SAFE_INT} THEN '\"' || y || '\"' ELSE y "
           "END), '') END), '')")
    attributes = (
        "'{\"provider\":' || coalesce(to_json(provider)::VARCHAR, 'null') || CASE WHEN "
        "user_id IS NOT NULL THEN ',\"user_id\":' || to_json(user_id)::VARCHAR ELSE '' END || "
        "CASE WHEN body IS NOT NULL THEN ',\"' || body_key || '\":' || CASE WHEN body_numbers = "
        f"'big' THEN {big} ELSE body END ELSE '' END || '}}'")
    return _final(layer, attributes)


def _final(inner: str, attributes: str) -> str:
    ok = f"outcome = '{OK}'"
    special = {
        "ts": f"CASE WHEN {ok} THEN ts_value END",
        "ts_desc": "'event logged'",
        "event_type": "event_type",
        "event_id": f"CASE WHEN {ok} THEN CAST(event_id AS INTEGER) END",
        "user": "col_user",
        "message": "message",
        "channel": "channel",
        "computer": "computer",
        "attributes": f"CASE WHEN {ok} THEN {attributes} END",
        "record_ref": "'record:' || CAST(record_id AS VARCHAR)",
        "parser": f"'{PARSER}'",
    }
    out = []
    for name, kind, _ in EVENT_COLUMNS:
        if name in special:
            expr = special[name]
        elif name in PROVENANCE:
            expr = name
        elif name in RULE_COLUMNS:
            expr = (f"CASE WHEN {ok} THEN CAST(col_{name} AS INTEGER) END" if kind == "INTEGER"
                    else f"col_{name}")
        else:
            raise ValueError(f"events column {name!r} has no EVTX value")
        out.append(f'{expr} AS "{name}"')
    return (f"SELECT member, record_id, CASE WHEN outcome = '{PYTHON}' THEN data END AS data, "
            f"{', '.join(out)}, outcome, reason FROM ({inner})")


# -- in the ingest ------------------------------------------------------------------------
#
# The ingest keeps the SELECT's rows for a bundle in a temporary table (``staged_sql`` over the
# workers' files), then takes from it: the rejections for ``ingest_errors``
# (``rejections_sql``), the records for Python (``for_python_sql``), the count of each per
# member (``counts_sql``), and the ``events`` rows (``events_sql``), which go into ``events``
# with the other parsers' rows in one INSERT. (One INSERT reading this SELECT and other Parquet
# files at once, sorted, ran out of DuckDB's memory limit on 1 GB of EVTX; reading a table, it
# does not.)

MEMBER_COLUMNS = [("file", "VARCHAR", "staged Parquet file"),
                  ("member", "INTEGER", "member key (the worker's task id)"),
                  *((name, "VARCHAR", "provenance") for name in PROVENANCE)]


def staged_sql(staged: str, members: str, *, check_nonfinite: bool = True) -> str:
    """``select_sql`` over staged EVTX records.

    Args:
        staged: a FROM item of the staged records with ``filename`` (``record_id``, ``data``).
        members: a FROM item with ``MEMBER_COLUMNS``, one row per staged file.
    """
    source = ("(SELECT m.member, s.record_id, s.data, "
              + ", ".join(f"m.{name}" for name in PROVENANCE)
              + f" FROM {staged} s JOIN {members} m ON s.filename = m.file)")
    return select_sql(source, {name: name for name in PROVENANCE},
                      check_nonfinite=check_nonfinite)


def events_sql(table: str) -> str:
    """The ``events`` rows in a table of ``select_sql`` rows."""
    names = ", ".join(f'"{name}"' for name, _, _ in EVENT_COLUMNS)
    return f"SELECT {names} FROM {table} WHERE outcome = '{OK}'"


def rejections_sql(table: str) -> str:
    """The ``ingest_errors`` rows (in schema order) in a table of ``select_sql`` rows."""
    return (f"SELECT bundle_id, member_path, member_sha256, record_ref, reason, source "
            f"FROM {table} WHERE outcome = '{REJECTED}'")


def counts_sql(table: str) -> str:
    """(member, outcome, records) of the records not loaded by the SQL itself."""
    return f"SELECT member, outcome, count(*) FROM {table} WHERE outcome <> '{OK}' GROUP BY ALL"


def for_python_sql(table: str) -> str:
    """(member, record id, JSON text) of the records for the Python path."""
    return (f"SELECT member, record_id, data FROM {table} WHERE outcome = '{PYTHON}' "
            f"ORDER BY member, record_id")
