"""Sigma logsource -> where its events are in the case database, as data.

A Windows logsource becomes (channel, event id) pairs (event id None: the whole channel); a
Linux one becomes ``events.source`` values of our parsers, optionally narrowed by a condition on
the row (``process`` holds the syslog program). A logsource mapped to a channel or parser we do
not ingest (e.g. ``product: linux, category: file_event``: no parser of ours sees Sysmon for
Linux) still converts; its routing simply matches no rows and the engine reports it as not
applicable. A logsource absent from these tables cannot be mapped: the rule fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sealtrail.findings.sigma.fields import VIEW, sql_literal

SECURITY = "Security"
SYSTEM = "System"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
PS_CLASSIC = "Windows PowerShell"

#: product windows, service -> channels.
WINDOWS_SERVICES: dict[str, tuple[str, ...]] = {
    "security": (SECURITY,),
    "system": (SYSTEM,),
    "application": ("Application",),
    "sysmon": (SYSMON,),
    "powershell": (POWERSHELL,),
    "powershell-classic": (PS_CLASSIC,),
    "taskscheduler": ("Microsoft-Windows-TaskScheduler/Operational",),
    "windefend": ("Microsoft-Windows-Windows Defender/Operational",),
    "wmi": ("Microsoft-Windows-WMI-Activity/Operational",),
    "codeintegrity-operational": ("Microsoft-Windows-CodeIntegrity/Operational",),
    "appxdeployment-server": ("Microsoft-Windows-AppXDeploymentServer/Operational",),
    "appxpackaging-om": ("Microsoft-Windows-AppxPackaging/Operational",),
    "appmodel-runtime": ("Microsoft-Windows-AppModel-Runtime/Admin",),
    "firewall-as": ("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",),
    "msexchange-management": ("MSExchange Management",),
    "bits-client": ("Microsoft-Windows-Bits-Client/Operational",),
    "dns-client": ("Microsoft-Windows-DNS Client Events/Operational",),
    "dns-server": ("DNS Server",),
    "iis-configuration": ("Microsoft-IIS-Configuration/Operational",),
    "ntlm": ("Microsoft-Windows-NTLM/Operational",),
    "security-mitigations": ("Microsoft-Windows-Security-Mitigations/Kernel Mode",
                             "Microsoft-Windows-Security-Mitigations/User Mode"),
    "applocker": ("Microsoft-Windows-AppLocker/MSI and Script",
                  "Microsoft-Windows-AppLocker/EXE and DLL",
                  "Microsoft-Windows-AppLocker/Packaged app-Deployment",
                  "Microsoft-Windows-AppLocker/Packaged app-Execution"),
    "terminalservices-localsessionmanager": (
        "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",),
    "smbserver-connectivity": ("Microsoft-Windows-SmbServer/Connectivity",),
    "smbclient-security": ("Microsoft-Windows-SmbClient/Security",),
    "shell-core": ("Microsoft-Windows-Shell-Core/Operational",),
    "openssh": ("OpenSSH/Operational",),
    "lsa-server": ("Microsoft-Windows-LSA/Operational",),
    "ldap": ("Microsoft-Windows-LDAP-Client/Debug",),
    "driver-framework": ("Microsoft-Windows-DriverFrameworks-UserMode/Operational",),
    "diagnosis-scripted": ("Microsoft-Windows-Diagnosis-Scripted/Operational",),
    "certificateservicesclient-lifecycle-system": (
        "Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational",),
    "capi2": ("Microsoft-Windows-CAPI2/Operational",),
    "microsoft-servicebus-client": ("Microsoft-ServiceBus-Client",),
    "printservice-admin": ("Microsoft-Windows-PrintService/Admin",),
    "printservice-operational": ("Microsoft-Windows-PrintService/Operational",),
}

_SYSMON_IDS: dict[str, tuple[int, ...]] = {
    "process_creation": (1,), "network_connection": (3,), "sysmon_status": (4, 16),
    "process_termination": (5,), "driver_load": (6,), "image_load": (7,),
    "create_remote_thread": (8,), "raw_access_thread": (9,), "process_access": (10,),
    "file_event": (11,), "file_creation": (11,), "registry_add": (12,), "registry_delete": (12,),
    "registry_set": (13,), "registry_rename": (14,), "registry_event": (12, 13, 14),
    "create_stream_hash": (15,), "pipe_created": (17, 18), "wmi_event": (19, 20, 21),
    "dns_query": (22,), "file_delete": (23, 26), "clipboard_capture": (24,),
    "process_tampering": (25,), "file_delete_detected": (26,), "file_block_executable": (27,),
    "file_block_shredding": (28,), "file_executable_detected": (29,), "sysmon_error": (255,),
}

#: product windows, category -> (channel, event id) pairs.
WINDOWS_CATEGORIES: dict[str, tuple[tuple[str, int | None], ...]] = {
    **{cat: tuple((SYSMON, i) for i in ids) for cat, ids in _SYSMON_IDS.items()},
    "process_creation": ((SYSMON, 1), (SECURITY, 4688)),
    "ps_script": ((POWERSHELL, 4104),),
    "ps_module": ((POWERSHELL, 4103),),
    "ps_classic_start": ((PS_CLASSIC, 400),),
    "ps_classic_provider_start": ((PS_CLASSIC, 600),),
    "ps_classic_script": ((PS_CLASSIC, 800),),
    "file_access": (("Microsoft-Windows-Kernel-File/Analytic", None),),
    "file_change": ((SYSMON, 2),),
    "file_rename": (("Microsoft-Windows-Kernel-File/Analytic", None),),
}


@dataclass(frozen=True, slots=True)
class LinuxSource:
    """Rows of these parsers, narrowed by ``where`` (SQL over the view) when set."""

    sources: tuple[str, ...]
    where: str | None = None


_TEXT_LOGS = ("syslog", "journald")

#: product linux: service or category -> our parsers. ``sysmon_linux`` and ``linux_net`` are
#: no parser of ours (the rule converts and is not applicable).
LINUX: dict[str, LinuxSource] = {
    "auth": LinuxSource(_TEXT_LOGS),
    "sshd": LinuxSource(_TEXT_LOGS, "process ILIKE 'sshd'"),
    "sudo": LinuxSource(_TEXT_LOGS, "process ILIKE 'sudo'"),
    "cron": LinuxSource(_TEXT_LOGS, "process ILIKE '%cron%'"),
    "syslog": LinuxSource(_TEXT_LOGS),
    "auditd": LinuxSource(("auditd",)),
    "vsftpd": LinuxSource(_TEXT_LOGS, "process ILIKE 'vsftpd'"),
    "clamav": LinuxSource(_TEXT_LOGS, "process ILIKE '%clam%'"),
    "guacamole": LinuxSource(_TEXT_LOGS, "process ILIKE '%guacd%'"),
    "process_creation": LinuxSource(("auditd",), "event_type = 'process_start'"),
    "file_event": LinuxSource(("sysmon_linux",)),
    "network_connection": LinuxSource(("sysmon_linux",)),
}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a rule's events are: the SQL condition and the engine's routing values.

    ``view`` names the view of these rows (``sigma_<product>_<category>_<service>``) that the
    rules of this logsource read.
    """

    view: str
    where: str
    needs: frozenset[tuple[str | None, int | None]] = frozenset()
    sources: frozenset[str] = frozenset()
    windows: bool = True

    def view_sql(self) -> str:
        return f"SELECT * FROM {VIEW} WHERE {self.where}"  # noqa: S608 - our constants


def _view_name(*parts: str | None) -> str:
    return "sigma_" + "_".join(re.sub(r"[^a-z0-9]+", "_", p.lower()).strip("_")
                               for p in parts if p)


class UnmappedLogsource(ValueError):
    """A logsource none of the tables above knows."""


def _pairs_sql(pairs: frozenset[tuple[str | None, int | None]]) -> str:
    parts = []
    for channel, eid in sorted(pairs, key=lambda p: (p[0] or "", p[1] or -1)):
        cond = [f"channel = {sql_literal(channel)}"] if channel else []
        cond += [f"event_id = {eid}"] if eid is not None else []
        parts.append("(" + " AND ".join(cond) + ")")
    return "(source = 'winevtx' AND (" + " OR ".join(parts) + "))"


def route(product: str | None, category: str | None, service: str | None) -> Route:
    """The route of a logsource.

    Raises:
        UnmappedLogsource: with the logsource spelled out.
    """
    label = f"product={product} category={category} service={service}"
    view = _view_name(product, category, service)
    if product == "windows":
        pairs: set[tuple[str | None, int | None]] = set()
        if category:
            if category not in WINDOWS_CATEGORIES:
                raise UnmappedLogsource(f"logsource {label}: no mapping for this category")
            pairs = set(WINDOWS_CATEGORIES[category])
        if service:
            if service not in WINDOWS_SERVICES:
                raise UnmappedLogsource(f"logsource {label}: no mapping for this service")
            channels = set(WINDOWS_SERVICES[service])
            pairs = ({p for p in pairs if p[0] in channels} if pairs
                     else {(ch, None) for ch in channels})
        if not pairs:
            raise UnmappedLogsource(f"logsource {label}: neither category nor service")
        needs = frozenset(pairs)
        return Route(view, _pairs_sql(needs), needs=needs)
    if product == "linux":
        key = service or category or "syslog"
        if key not in LINUX:
            raise UnmappedLogsource(f"logsource {label}: no mapping for this Linux log")
        src = LINUX[key]
        where = "source IN (" + ", ".join(map(sql_literal, src.sources)) + ")"
        if src.where:
            where = f"({where} AND {src.where})"
        return Route(view, where, sources=frozenset(src.sources), windows=False)
    raise UnmappedLogsource(f"logsource {label}: only windows and linux products are mapped")
