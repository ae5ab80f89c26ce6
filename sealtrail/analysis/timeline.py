"""The merged timeline: events filtered by time, host, user, address and type, oldest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sealtrail.errors import UsageError

SUMMARY_COLUMNS = ("ts", "host", "source", "event_type", "user", "src_ip", "message",
                   "member_path", "record_ref")


def parse_when(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is not a time like 2026-03-10T02:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class TimelineFilter:
    start: datetime | None = None
    end: datetime | None = None
    hosts: Sequence[str] = ()
    users: Sequence[str] = ()
    ips: Sequence[str] = ()
    types: Sequence[str] = ()
    limit: int | None = None

    def sql(self, columns: Sequence[str] | None = None) -> tuple[str, list[object]]:
        where: list[str] = []
        params: list[object] = []
        if self.start:
            where.append("ts >= ?")
            params.append(self.start)
        if self.end:
            where.append("ts < ?")
            params.append(self.end)
        for values, expr in (
            (self.hosts, "host IN ({})"),
            (self.types, "event_type IN ({})"),
            (self.users, "(\"user\" IN ({0}) OR target_user IN ({0}) OR subject_user IN ({0}))"),
            (self.ips, "(src_ip IN ({0}) OR dst_ip IN ({0}))"),
        ):
            if values:
                marks = ", ".join("?" for _ in values)
                where.append(expr.format(marks))
                params.extend(list(values) * expr.count("{"))
        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        sql = f"SELECT {select} FROM events"  # noqa: S608 - columns from our constants, values bound
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, bundle_id, member_path, record_ref"
        if self.limit:
            sql += f" LIMIT {int(self.limit)}"
        return sql, params
