from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.collectors.definitions import (
    DefinitionError,
    UnknownArtifact,
    load_registry,
    triage_group,
)
from sealtrail.errors import UsageError


def _leaf_paths(name: str, os_name: str) -> set[str]:
    registry = load_registry()
    return {
        path
        for leaf in registry.expand(name, os_name)
        for source in leaf.sources
        if source.applies_to(os_name)
        for path in source.paths
    }


def test_catalogue_and_own_definitions_are_loaded() -> None:
    registry = load_registry()
    assert len(registry) > 700
    assert "LinuxAuthLogs" in registry
    assert registry.get("SealtrailLinuxTriage").origin == "sealtrail.yaml"
    assert load_registry() is registry  # the default registry is cached


@pytest.mark.parametrize("os_name", ["linux", "windows", "darwin"])
def test_every_triage_member_exists_and_applies(os_name: str) -> None:
    registry = load_registry()
    members = registry.triage_names(os_name)
    assert members
    for member in members:
        assert registry.get(member).applies_to(os_name), member
    assert registry.get(triage_group(os_name)).is_group


def test_linux_triage_covers_the_required_files() -> None:
    paths = _leaf_paths("SealtrailLinuxTriage", "linux")
    required = {
        "/var/log/auth*",
        "/var/log/secure*",
        "/var/log/syslog*",
        "/var/log/messages*",
        "/var/log/kern*",
        "/var/log/wtmp*",
        "/var/log/btmp*",
        "/var/log/lastlog",
        "/var/log/journal/**",
        "%%users.homedir%%/.bash_history",
        "%%users.homedir%%/.zsh_history",
        "/etc/crontab",
        "/etc/cron.d/*",
        "/var/spool/cron/**",
        "/var/log/apache2/access.log*",
        "/var/log/httpd/error*",
        "/var/log/nginx/access.log*",
        "/var/log/nginx/error.log*",
        "/etc/passwd",
        "/etc/group",
        "/etc/sudoers",
        "/var/log/dpkg.log*",
        "/var/log/apt/history.log*",
        "/var/log/audit/*",
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d/*",
        "/etc/sudoers.d/*",
        "/etc/systemd/system/*.service",
        "/lib/systemd/system/*.service",
        "%%users.homedir%%/.ssh/authorized_keys",
    }
    assert required <= paths
    assert not {p for p in paths if "shadow" in p}  # password hashes stay out by default


def test_windows_triage_covers_the_required_files() -> None:
    paths = {p.lower() for p in _leaf_paths("SealtrailWindowsTriage", "windows")}
    for needle in (
        "winevt\\logs\\*.evtx",
        "config\\sam",
        "config\\system",
        "config\\software",
        "config\\security",
        "ntuser.dat",
        "usrclass.dat",
        "amcache.hve",
        "prefetch\\*.pf",
        "system32\\tasks\\**10",
        "%%environ_systemroot%%\\tasks\\**10",
        "setupapi.dev.log",
        "consolehost_history.txt",
    ):
        assert any(p.endswith(needle) for p in paths), needle


def test_get_is_case_insensitive_and_knows_aliases() -> None:
    registry = load_registry()
    assert registry.get("linuxauthlogs").name == "LinuxAuthLogs"
    assert registry.get("MacOSBashHistory").name == "BashShellHistoryFile"


def test_unknown_artifact_names_it_and_suggests() -> None:
    with pytest.raises(UnknownArtifact) as caught:
        load_registry().get("LinuxAuthLog")
    error = caught.value
    assert isinstance(error, UsageError)
    assert error.name == "LinuxAuthLog"
    assert error.suggestions[0] == "LinuxAuthLogs"
    assert str(error).startswith("unknown artifact 'LinuxAuthLog'; did you mean LinuxAuthLogs")
    assert "\n" not in str(error)


def test_sources_of_other_types_are_kept() -> None:
    run_keys = load_registry().get("WindowsRunKeys")
    assert [s.type for s in run_keys.sources] == ["REGISTRY_KEY"]
    assert not run_keys.sources[0].collectable


def test_source_level_os_is_kept() -> None:
    bash = load_registry().get("BashShellHistoryFile")
    assert [s.supported_os for s in bash.sources] == [("Darwin", "Linux"), ("Windows",)]
    assert bash.sources[1].separator == "\\"


def test_names_filter_by_os() -> None:
    registry = load_registry()
    linux = registry.names("linux")
    assert "LinuxAuthLogs" in linux
    assert "WindowsRunKeys" not in linux
    assert len(registry.names()) == len(registry)


CYCLE = """\
name: GroupA
doc: A.
sources:
- type: ARTIFACT_GROUP
  attributes: {names: [GroupB, LeafOne]}
---
name: GroupB
doc: B.
sources:
- type: ARTIFACT_GROUP
  attributes: {names: [GroupA, LeafTwo, LeafOne]}
---
name: LeafOne
doc: One.
sources:
- type: FILE
  attributes: {paths: ['/one']}
---
name: LeafTwo
doc: Two.
sources:
- type: FILE
  attributes: {paths: ['/two']}
"""


def test_expand_survives_a_group_cycle(tmp_path: Path) -> None:
    (tmp_path / "cycle.yaml").write_text(CYCLE)
    registry = load_registry([tmp_path])
    assert [d.name for d in registry.expand("GroupA")] == ["LeafTwo", "LeafOne"]
    assert [d.name for d in registry.expand("LeafOne")] == ["LeafOne"]


def test_expand_skips_group_sources_for_another_os() -> None:
    registry = load_registry()
    linux = {d.name for d in registry.expand("TriageHistoryFiles", "linux")}
    windows = {d.name for d in registry.expand("TriageHistoryFiles", "windows")}
    assert "WindowsPowerShellHistory" in windows
    assert "WindowsPowerShellHistory" not in linux


def test_duplicate_name_in_an_extra_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text(
        "name: linuxauthlogs\ndoc: Again.\nsources:\n- type: FILE\n  attributes: {paths: ['/x']}\n"
    )
    with pytest.raises(DefinitionError, match="already defined by LinuxAuthLogs"):
        load_registry([tmp_path])


def test_invalid_yaml_is_a_definition_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(DefinitionError) as caught:
        load_registry([tmp_path])
    assert caught.value.path == str(tmp_path / "bad.yaml")


def test_definition_missing_sources_is_a_definition_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: NoSources\ndoc: Nothing.\n")
    with pytest.raises(DefinitionError, match="missing sources"):
        load_registry([tmp_path])


def test_group_naming_an_undefined_artifact_is_refused(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(
        "name: Dangling\ndoc: D.\nsources:\n- type: ARTIFACT_GROUP\n"
        "  attributes: {names: [NoSuchThing]}\n"
    )
    with pytest.raises(DefinitionError, match="undefined artifact 'NoSuchThing'"):
        load_registry([tmp_path])


def test_triage_group_for_an_os_without_one() -> None:
    assert triage_group("Linux") == "SealtrailLinuxTriage"
    with pytest.raises(UsageError, match="no default triage set for esxi"):
        triage_group("esxi")
    with pytest.raises(UsageError, match="unknown OS 'plan9'"):
        triage_group("plan9")
