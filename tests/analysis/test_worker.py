"""The worker's checks on what parsers yield, before rows are written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sealtrail.analysis.records import Event, Rejection
from sealtrail.analysis.worker import MemberTask, item_rows

TASK = MemberTask(0, "b.stb", "bundle-1", "data/x", "ab" * 32, "/x.evtx", 1, None, "h", (), "")
TS = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(**values) -> Event:
    return Event(TS, "event logged", "other", "m", "record:7", **values)


@pytest.mark.parametrize(("field", "value"), [
    ("event_id", 2**31), ("event_id", -(2**31) - 1), ("logon_type", 2**40),
    ("src_port", 2**64)])
def test_a_value_the_integer_column_cannot_hold_is_a_rejection_not_a_failed_member(field, value):
    event_row, error_row = item_rows(event(**{field: value}), TASK, "winevtx", "1")
    assert event_row is None
    assert error_row == ("bundle-1", "/x.evtx", "ab" * 32, "record:7",
                         f"{field} {value} is outside the range of the events column (INTEGER)",
                         "winevtx")


def test_integer_columns_at_their_limits_load():
    event_row, error_row = item_rows(event(event_id=2**31 - 1, logon_type=-(2**31), src_port=1),
                                     TASK, "winevtx", "1")
    assert error_row is None and event_row[5] == 2**31 - 1


def test_rejections_and_bad_events_become_error_rows():
    assert item_rows(Rejection("offset:0", "why"), TASK, "p", "1")[1][3:] == ("offset:0", "why",
                                                                              "p")
    naive = Event(datetime(2020, 1, 1), "x", "other", "m", "line:1")  # noqa: DTZ001
    assert item_rows(naive, TASK, "p", "1")[1][4] == "parser produced a naive timestamp"
