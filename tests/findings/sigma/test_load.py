"""Bad input: every file or rule that cannot run is one failure with a one-line reason; the
rest convert."""

from __future__ import annotations

from pathlib import Path

from sealtrail.findings.sigma import sigma_source

GOOD = """title: Whoami run
id: 11111111-1111-4111-8111-111111111111
status: test
level: medium
author: Test Author
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    selection: {Image|endswith: '\\\\whoami.exe'}
    condition: selection
"""


def _rule(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_rule_keeps_its_metadata_and_routing(tmp_path: Path) -> None:
    source = sigma_source([_rule(tmp_path, "good.yml", GOOD)], levels=None, statuses=None)
    [rule] = source.rules
    assert source.failures == ()
    assert rule.meta.author == "Test Author"
    assert rule.meta.title == "Whoami run"
    assert rule.meta.tactics == ("discovery",)
    assert rule.meta.techniques == ("T1033",)
    assert rule.needs == {("Microsoft-Windows-Sysmon/Operational", 1), ("Security", 4688)}


def test_file_that_is_not_yaml_is_one_failure(tmp_path: Path) -> None:
    source = sigma_source([_rule(tmp_path, "broken.yml", "title: [unclosed\n  - : :\n")],
                          levels=None, statuses=None)
    [failure] = source.failures
    assert failure.title == "broken.yml"
    assert failure.reason.startswith("not a Sigma rule file:")
    assert "\n" not in failure.reason


def test_unknown_modifier_fails_the_rule(tmp_path: Path) -> None:
    text = GOOD.replace("Image|endswith", "Image|sideways")
    source = sigma_source([_rule(tmp_path, "mod.yml", text)], levels=None, statuses=None)
    [failure] = source.failures
    assert failure.rule_id == "11111111-1111-4111-8111-111111111111"
    assert "sideways" in failure.reason
    assert source.rules == ()


def test_unknown_linux_field_fails_and_unknown_windows_field_reads_eventdata(
        tmp_path: Path) -> None:
    linux = GOOD.replace("product: windows, category: process_creation",
                         "product: linux, service: auditd").replace("Image|endswith", "a9")
    windows = GOOD.replace("Image|endswith", "SomeEvtxKey").replace("1111-4111", "2222-4111")
    source = sigma_source([_rule(tmp_path, "l.yml", linux), _rule(tmp_path, "w.yml", windows)],
                          levels=None, statuses=None)
    [failure] = source.failures
    assert failure.reason.startswith("unknown field 'a9' for a non-Windows logsource")
    [rule] = source.rules
    assert "$.EventData.\"SomeEvtxKey\"" in rule.sql


def test_unmapped_logsource_fails_mapped_but_absent_converts(tmp_path: Path) -> None:
    cloud = GOOD.replace("product: windows, category: process_creation",
                         "product: aws, service: cloudtrail")
    absent = GOOD.replace("category: process_creation", "service: printservice-admin").replace(
        "1111-4111", "3333-4111")
    source = sigma_source([_rule(tmp_path, "c.yml", cloud), _rule(tmp_path, "p.yml", absent)],
                          levels=None, statuses=None)
    [failure] = source.failures
    assert "only windows and linux products are mapped" in failure.reason
    [rule] = source.rules
    assert rule.needs == {("Microsoft-Windows-PrintService/Admin", None)}


def test_folder_where_some_fail_converts_the_rest(tmp_path: Path) -> None:
    _rule(tmp_path, "a.yml", GOOD)
    _rule(tmp_path, "b.yml", "::: not yaml")
    _rule(tmp_path, "c.yml", GOOD.replace("Image|endswith", "Image|nope").replace(
        "1111-4111", "4444-4111"))
    source = sigma_source([tmp_path], levels=None, statuses=None)
    assert [r.meta.title for r in source.rules] == ["Whoami run"]
    assert len(source.failures) == 2


def test_level_and_status_filters(tmp_path: Path) -> None:
    _rule(tmp_path, "a.yml", GOOD)
    _rule(tmp_path, "b.yml", GOOD.replace("level: medium", "level: low").replace(
        "1111-4111", "5555-4111"))
    source = sigma_source([tmp_path], levels={"medium", "high", "critical"},
                          statuses={"test", "stable"})
    assert [r.meta.level for r in source.rules] == ["medium"]
    assert sigma_source([tmp_path], levels=None, statuses={"stable"}).rules == ()
