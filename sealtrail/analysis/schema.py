"""The case database's tables, as data: one list drives the DuckDB DDL, the Arrow schema and
docs/schema.md. Every events row points back to signed bytes: bundle, member, its SHA-256 and
the record's place in it.

Types are DuckDB type names; ``arrow_rows`` maps them to Arrow types.
"""

from __future__ import annotations

# (column, type, description)
EVENT_COLUMNS: list[tuple[str, str, str]] = [
    ("ts", "TIMESTAMPTZ", "when it happened, UTC"),
    ("ts_desc", "VARCHAR", "which time this is (event logged, request received, mtime, ...)"),
    ("host", "VARCHAR", "host the evidence came from"),
    ("source", "VARCHAR", "parser name (winevtx, syslog, web_access, manifest_fs, ...)"),
    ("event_type", "VARCHAR", "vocabulary in docs/schema.md"),
    ("event_id", "INTEGER", "Windows event id, where there is one"),
    ("user", "VARCHAR", "the account the event is about"),
    ("src_ip", "VARCHAR", "source address"),
    ("src_port", "INTEGER", "source port"),
    ("dst_ip", "VARCHAR", "destination address"),
    ("process", "VARCHAR", "process name or image"),
    ("command_line", "VARCHAR", "command line"),
    ("path", "VARCHAR", "file or URL path the event is about"),
    ("message", "VARCHAR", "human-readable summary"),
    ("channel", "VARCHAR", "EVTX channel"),
    ("computer", "VARCHAR", "EVTX computer name"),
    ("logon_type", "INTEGER", "Windows logon type"),
    ("subject_user", "VARCHAR", "acting account (Windows SubjectUserName)"),
    ("subject_sid", "VARCHAR", "acting account SID"),
    ("target_user", "VARCHAR", "target account (Windows TargetUserName)"),
    ("target_sid", "VARCHAR", "target account SID"),
    ("parent_process", "VARCHAR", "parent process image"),
    ("service_name", "VARCHAR", "service name"),
    ("service_path", "VARCHAR", "service image path"),
    ("task_name", "VARCHAR", "scheduled task name"),
    ("script_block", "VARCHAR", "PowerShell script block text"),
    ("attributes", "JSON", "everything else the record holds"),
    ("bundle_id", "VARCHAR", "provenance: the sealed bundle"),
    ("member_path", "VARCHAR", "provenance: the source path of the bundle member"),
    ("member_sha256", "VARCHAR", "provenance: SHA-256 of the member's stored bytes"),
    ("record_ref", "VARCHAR", "provenance: record:<id>, line:<n>, offset:<n>, entry:<n>, "
                              "manifest:<member>, member:<rule> (YARA)"),
    ("parser", "VARCHAR", "provenance: parser (and library) that produced the row"),
    ("parser_version", "VARCHAR", "provenance: parser version"),
]

# Derived by the database as rows go in (store.event_uid_sql), never by a parser: the same row
# gets the same id in every rebuild of the case database.
EVENT_UID_COLUMN = ("event_uid", "VARCHAR",
                    "stable id of the row: MD5 of its provenance, time and type (see below)")

ARTIFACT_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "bundle"),
    ("host", "VARCHAR", "source host"),
    ("member_name", "VARCHAR", "ZIP member name (NULL for items without bytes)"),
    ("member_path", "VARCHAR", "path on the source host"),
    ("sha256", "VARCHAR", "SHA-256 of the collected bytes"),
    ("size", "BIGINT", "bytes collected"),
    ("outcome", "VARCHAR", "collected, changed, partial, missing, unreadable, symlink, ..."),
    ("reason", "VARCHAR", "why, for anything but collected"),
    ("artifacts", "VARCHAR[]", "artifact definitions that asked for it"),
    ("kind", "VARCHAR", "file, symlink, fifo, ..."),
    ("mode", "VARCHAR", "st_mode, octal"),
    ("uid", "BIGINT", "owner uid"),
    ("gid", "BIGINT", "group gid"),
    ("inode", "VARCHAR", "inode number"),
    ("mtime", "TIMESTAMPTZ", "modification time"),
    ("atime", "TIMESTAMPTZ", "access time"),
    ("ctime", "TIMESTAMPTZ", "inode change time"),
    ("birthtime", "TIMESTAMPTZ", "creation time, where known"),
    ("parser", "VARCHAR", "parser that read it (NULL: none applies)"),
    ("records_seen", "BIGINT", "records the parser looked at"),
    ("records_loaded", "BIGINT", "rows loaded into events or config_entries"),
    ("records_rejected", "BIGINT", "rows in ingest_errors"),
]

INGEST_ERROR_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "bundle"),
    ("member_path", "VARCHAR", "path on the source host"),
    ("member_sha256", "VARCHAR", "SHA-256 of the member"),
    ("record_ref", "VARCHAR", "where in the member (or 'member' for the whole member)"),
    ("reason", "VARCHAR", "why it was not loaded"),
    ("parser", "VARCHAR", "parser that rejected it"),
]

YARA_MATCH_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "bundle"),
    ("member_path", "VARCHAR", "path on the source host"),
    ("member_sha256", "VARCHAR", "SHA-256 of the member"),
    ("decompressed", "BOOLEAN", "matched in the decompressed content of a compressed member"),
    ("rule", "VARCHAR", "rule name"),
    ("namespace", "VARCHAR", "rules file"),
    ("tags", "VARCHAR[]", "rule tags"),
    ("meta", "JSON", "rule metadata"),
    ("strings", "JSON", "matched strings: identifier, offset, length, first bytes (hex)"),
    ("rules_sha256", "VARCHAR", "SHA-256 of the compiled rule sources"),
    ("scanned_at", "TIMESTAMPTZ", "when the scan ran (UTC)"),
]

# Settings of collected configuration files (parsers.config_files): rows without a time, which
# the configuration rules read. Never a secret: shadow rows say only whether a hash is set.
CONFIG_ENTRY_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "provenance: the sealed bundle"),
    ("host", "VARCHAR", "host the file came from"),
    ("member_path", "VARCHAR", "provenance: the source path of the bundle member"),
    ("member_sha256", "VARCHAR", "provenance: SHA-256 of the member's stored bytes"),
    ("line_no", "BIGINT", "1-based line of the decompressed text (a continued line: its first)"),
    ("file_kind", "VARCHAR", "sshd_config, sshd_config.d, sudoers, sudoers.d, passwd, shadow"),
    ("key", "VARCHAR", "sshd keyword (lower case), sudoers user list or directive, account name"),
    ("value", "VARCHAR", "the setting; passwd: the UID; shadow: empty, locked or set"),
    ("raw", "VARCHAR", "the line as written (NULL for shadow; a passwd hash shown as <set>)"),
    ("parser", "VARCHAR", "provenance: parser that produced the row"),
    ("parser_version", "VARCHAR", "provenance: parser version"),
]

INGEST_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "bundle ingested"),
    ("manifest_sha256", "VARCHAR", "its manifest digest"),
    ("ingested_at", "TIMESTAMPTZ", "when (UTC)"),
    ("forced", "BOOLEAN", "ingested although verification failed"),
    ("events", "BIGINT", "rows added to events"),
    ("errors", "BIGINT", "rows added to ingest_errors"),
]

YARA_SCAN_COLUMNS: list[tuple[str, str, str]] = [
    ("bundle_id", "VARCHAR", "bundle scanned"),
    ("rules_sha256", "VARCHAR", "SHA-256 of the rule sources (name + bytes of each file)"),
    ("rules", "VARCHAR[]", "rule files"),
    ("scanned_at", "TIMESTAMPTZ", "when (UTC)"),
    ("members", "BIGINT", "members scanned (decompressed content counted separately)"),
    ("matches", "BIGINT", "rule matches"),
    ("errors", "BIGINT", "members that could not be scanned (see ingest_errors)"),
]

TABLES: dict[str, list[tuple[str, str, str]]] = {
    "events": [*EVENT_COLUMNS, EVENT_UID_COLUMN],
    "artifacts": ARTIFACT_COLUMNS,
    "ingest_errors": INGEST_ERROR_COLUMNS,
    "yara_matches": YARA_MATCH_COLUMNS,
    "config_entries": CONFIG_ENTRY_COLUMNS,
    "ingests": INGEST_COLUMNS,
    "yara_scans": YARA_SCAN_COLUMNS,
}
