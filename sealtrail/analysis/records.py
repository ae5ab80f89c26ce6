"""What parsers produce: events (timeline rows) and rejections (what could not be parsed).

Every event carries its provenance: which bundle, which member, that member's SHA-256, where in
the member (``record_ref``: an EVTX record id, a byte offset, a line number) and which parser
and version produced it. ``seen = loaded + rejected`` holds for every member: a parser yields
exactly one ``Event`` or ``Rejection`` for every record it looks at (or, for the EVTX parser
inside an ingest, an ``EvtxJson`` whose fields are read later in SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

# The event_type vocabulary (docs/schema.md explains each).
EVENT_TYPES = frozenset(
    {
        "logon_success",
        "logon_failure",
        "logoff",
        "account_created",
        "account_deleted",
        "account_changed",
        "group_membership_changed",
        "privilege_use",
        "process_start",
        "process_end",
        "service_installed",
        "service_state",
        "scheduled_task_created",
        "log_cleared",
        "shell_command",
        "http_request",
        "network_connection",
        "package_change",
        "system_boot",
        "system_shutdown",
        "file_created",
        "file_modified",
        "file_accessed",
        "file_changed",
        "yara_match",
        "other",
    }
)


class Event(NamedTuple):
    """One timeline row. ``ts`` must be timezone-aware (UTC); all else optional but typed.

    Immutable like a frozen dataclass, but a NamedTuple: parsers make one per record, and a
    tuple is several times cheaper to build than a frozen dataclass of 29 fields (measured in
    the EVTX parser's profile: ~4.4 us per record as a dataclass).

    ``record_ref`` locates the record inside its member: ``record:<id>`` (EVTX record id),
    ``line:<n>`` (1-based line number of the decompressed text), ``offset:<n>`` (byte offset
    of the decompressed stream) or ``entry:<n>``.
    """

    ts: datetime
    ts_desc: str
    event_type: str
    message: str
    record_ref: str
    event_id: int | None = None
    user: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    process: str | None = None
    command_line: str | None = None
    path: str | None = None
    # Windows / EVTX fields analysts filter on
    channel: str | None = None
    computer: str | None = None
    logon_type: int | None = None
    subject_user: str | None = None
    subject_sid: str | None = None
    target_user: str | None = None
    target_sid: str | None = None
    parent_process: str | None = None
    service_name: str | None = None
    service_path: str | None = None
    task_name: str | None = None
    script_block: str | None = None
    attributes: dict[str, Any] | None = None
    # which parser made it, when one member is read by two (EVTX: evtx + python-evtx)
    parser: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record a parser looked at and could not turn into an event, with the reason."""

    record_ref: str
    reason: str


class ConfigEntry(NamedTuple):
    """One setting of a collected configuration file (a ``config_entries`` row, not an event:
    a setting has no time). ``line_no`` is 1-based over the decompressed text, as ``line:<n>``
    of events; ``raw`` is the line as written, except where it would carry a secret (shadow
    rows have no ``raw``; a passwd password field other than ``x`` is replaced by its state)."""

    line_no: int
    file_kind: str
    key: str
    value: str | None
    raw: str | None


class EvtxJson(NamedTuple):
    """A record the ``evtx`` crate rendered as JSON, not read yet: the ingest stages these and
    reads their fields in SQL (``parsers.evtx_sql``), where each becomes exactly the Event or
    Rejection ``parsers.evtx_windows.record_from_json`` would make of it."""

    record_id: int
    data: str
