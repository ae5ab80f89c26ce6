"""The parser registry: an explicit, ordered list. The first parser whose ``check`` accepts a
member reads it; order matters where formats overlap (specific before generic)."""

from __future__ import annotations

from sealtrail.analysis.parsers.auditd import AuditdParser
from sealtrail.analysis.parsers.base import MemberContext, build_registry
from sealtrail.analysis.parsers.bodyfile import BodyfileParser
from sealtrail.analysis.parsers.config_files import ConfigFileParser
from sealtrail.analysis.parsers.crontab import CrontabParser
from sealtrail.analysis.parsers.evtx_windows import EvtxParser
from sealtrail.analysis.parsers.journald import JournaldParser
from sealtrail.analysis.parsers.package_logs import AptHistoryParser, DpkgLogParser
from sealtrail.analysis.parsers.shell_history import ShellHistoryParser
from sealtrail.analysis.parsers.syslog_text import SyslogParser
from sealtrail.analysis.parsers.utmp import LastlogParser, UtmpParser
from sealtrail.analysis.parsers.web_access import WebAccessParser

# Strict (magic-number or exact-name) parsers first; content-sniffing ones last.
PARSER_CLASSES: list[type] = [
    EvtxParser,
    JournaldParser,
    LastlogParser,
    UtmpParser,
    AuditdParser,
    DpkgLogParser,
    AptHistoryParser,
    ShellHistoryParser,
    CrontabParser,
    ConfigFileParser,
    WebAccessParser,
    SyslogParser,
    BodyfileParser,
]

REGISTRY: dict[str, type] = build_registry(PARSER_CLASSES)


def choose_parser(member: MemberContext, head: bytes):  # noqa: ANN201 - a parser instance
    """The first registered parser that accepts the member, or None."""
    for cls in PARSER_CLASSES:
        parser = cls()
        if parser.check(member, head):
            return parser
    return None
