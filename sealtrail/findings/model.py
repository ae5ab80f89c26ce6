"""What a rule is once it can run, and what running it needs: the contract between rule sources
(built-in SQL rules, Sigma rules through pySigma, configuration checks) and the engine.

A source turns its files into `CompiledRule`s (or `RuleFailure`s: a rule that cannot be turned
into SQL is reported with its reason, never dropped). The engine runs each compiled rule's
``sql`` against the case database and groups the rows it returns into findings.

The SQL contract: ``CompiledRule.sql`` is one DuckDB ``SELECT`` that reads only the case
database's tables and the views the sources declare (`RuleSource.views`), and returns exactly
these columns, one row per piece of evidence:

    event_uid   VARCHAR      the ``events.event_uid`` of the evidence row, or NULL for evidence
                             that is a line of a collected file (configuration checks)
    ts          TIMESTAMPTZ  when (NULL for configuration evidence)
    host        VARCHAR      the host the evidence is from
    user_name   VARCHAR      the account concerned, or NULL
    src_ip      VARCHAR      the remote address concerned, or NULL
    group_key   VARCHAR      what else separates one finding of this rule from another (e.g.
                             a correlation's group), or NULL
    bundle_id   VARCHAR      for file-line evidence: the bundle, member path and line number
    member_path VARCHAR      (NULL for event evidence: the event row has its own provenance)
    line_no     BIGINT

The engine makes one finding per (rule, host, user_name, src_ip, group_key) with its evidence
rows; a finding's id is derived from those values, so re-running the same rules on the same
case gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The columns every rule's SQL returns, in this order.
EVIDENCE_COLUMNS = ("event_uid", "ts", "host", "user_name", "src_ip", "group_key",
                    "bundle_id", "member_path", "line_no")
LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
KINDS = ("event", "correlation", "config")


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """Who wrote a rule, what it detects and how sure it is (shown wherever the rule is).

    Attributes:
        rule_id: stable id: a Sigma rule's ``id`` (UUID), or a built-in rule's own id.
        title: one line.
        level: one of `LEVELS`.
        status: one of `STATUSES`.
        source: ``"builtin"``, ``"sigma:<path as given>"`` or ``"config"``.
        tactics: ATT&CK tactic names, e.g. ``("credential-access",)``.
        techniques: ATT&CK technique ids, e.g. ``("T1110.001",)``.
        author: as the rule states it (SigmaHQ's DRL 1.1 asks that it is kept).
        derived_from: the SigmaHQ rule id a built-in rule derives from, if any.
    """

    rule_id: str
    title: str
    level: str
    status: str
    source: str
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    description: str = ""
    false_positives: tuple[str, ...] = ()
    author: str = ""
    references: tuple[str, ...] = ()
    derived_from: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run.

    Attributes:
        meta: the rule's metadata.
        sql: the SELECT of the module docstring's contract.
        kind: one of `KINDS`.
        needs: the (channel, event_id) pairs the rule reads (either may be None for "any");
            the engine skips the rule as not applicable when the case has no such rows, and
            runs it only over those. Empty: no routing (the rule reads what it reads).
        sources: for rules over non-EVTX events, the ``events.source`` values (parsers) it
            reads, for the same routing; empty: any.
    """

    meta: RuleMeta
    sql: str
    kind: str = "event"
    needs: frozenset[tuple[str | None, int | None]] = frozenset()
    sources: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that could not be compiled, with why (one ``rule_outcomes`` row, outcome
    ``failed``)."""

    rule_id: str
    title: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class RuleSource:
    """What one source of rules gives the engine: views to create first (name -> SELECT over
    the case database), the compiled rules, and the failures."""

    name: str
    views: dict[str, str] = field(default_factory=dict)
    rules: tuple[CompiledRule, ...] = ()
    failures: tuple[RuleFailure, ...] = ()
