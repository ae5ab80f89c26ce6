"""Windows profiles and SIDs from the SOFTWARE hive (libregf), merged with Users/*."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from sealtrail.collectors.definitions import load_registry
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.registry_hive import HiveError, Profile, read_software_hive
from sealtrail.collectors.source import DirectorySource
from sealtrail.collectors.variables import KnowledgeBase

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HIVE = FIXTURES / "hives" / "SOFTWARE"
DOMAIN = "S-1-5-21-1111111111-2222222222-3333333333"


def test_reads_system_root_and_every_profile():
    with HIVE.open("rb") as stream:
        hive = read_software_hive(stream, "SOFTWARE")
    assert hive.system_root == "C:\\Windows"
    assert hive.profiles == (
        Profile("S-1-5-18", "%systemroot%\\system32\\config\\systemprofile"),
        Profile("S-1-5-19", "%systemroot%\\ServiceProfiles\\LocalService"),
        Profile(f"{DOMAIN}-1001", "C:\\Users\\alice"),
        Profile(f"{DOMAIN}-1002", "%SystemDrive%\\Users\\bob"),
        Profile(f"{DOMAIN}-1003", "D:\\Profiles\\carol"),
    )


@pytest.mark.parametrize("data", [b"", b"not a hive at all" * 100, HIVE.read_bytes()[:4096],
                                  b"regf" + bytes(8000)])
def test_a_broken_hive_is_one_error_naming_it(data):
    with pytest.raises(HiveError) as caught:
        read_software_hive(io.BytesIO(data), "C/Windows/System32/config/SOFTWARE")
    assert str(caught.value).startswith("C/Windows/System32/config/SOFTWARE: ")
    assert "\n" not in str(caught.value)


def windows_folder(root: Path, hive: bytes | None) -> Path:
    (root / "Windows/System32/config/systemprofile").mkdir(parents=True)
    (root / "Windows/ServiceProfiles/LocalService").mkdir(parents=True)
    if hive is not None:
        (root / "Windows/System32/config/SOFTWARE").write_bytes(hive)
    for user in ("alice", "BOB", "Public"):
        (root / "Users" / user).mkdir(parents=True)
    return root


def test_profiles_get_their_sids_and_service_profiles_become_users(tmp_path):
    kb = KnowledgeBase.from_source(DirectorySource(windows_folder(tmp_path, HIVE.read_bytes())),
                                   "windows")
    users = {u.username: (u.homedir, u.sid) for u in kb.users}
    assert users == {
        "alice": ("C:\\Users\\alice", f"{DOMAIN}-1001"),
        "BOB": ("C:\\Users\\BOB", f"{DOMAIN}-1002"),  # %SystemDrive%, matched case-insensitively
        "Public": ("C:\\Users\\Public", None),  # a folder the hive does not name
        "systemprofile": ("C:\\Windows\\System32\\config\\systemprofile", "S-1-5-18"),
        "LocalService": ("C:\\Windows\\ServiceProfiles\\LocalService", "S-1-5-19"),
        "carol": (None, f"{DOMAIN}-1003"),  # on D:, not in this source
    }
    assert kb.notes == {}
    homes = kb.expand("%%users.homedir%%\\NTUSER.DAT", "\\").patterns
    assert "Windows/ServiceProfiles/LocalService/NTUSER.DAT" in homes
    assert not any("carol" in p for p in homes)  # no home folder: skipped, not guessed
    sids = kb.expand("%%environ_systemdrive%%\\$Recycle.Bin\\%%users.sid%%\\*", "\\")
    assert len(sids.patterns) == 5 and not sids.unresolved


@pytest.mark.parametrize(("hive", "why"), [
    (None, "no SOFTWARE hive in Windows/System32/config"),
    (b"garbage" * 50, "SOFTWARE hive unreadable: Windows/System32/config/SOFTWARE: not a "
                      "readable registry hive"),
])
def test_without_a_readable_hive_folders_stand_and_the_plan_says_why(tmp_path, hive, why):
    root = windows_folder(tmp_path / "host", hive)
    kb = KnowledgeBase.from_source(DirectorySource(root), "windows")
    assert sorted(u.username for u in kb.users) == ["BOB", "Public", "alice"]
    assert all(u.sid is None for u in kb.users)
    assert kb.notes["users.sid"].startswith(why)
    definitions = tmp_path / "defs"
    definitions.mkdir()
    (definitions / "sid.yaml").write_text(
        "name: TestPerSidFolder\ndoc: a per-SID path\nsources:\n- type: FILE\n"
        "  attributes:\n    paths: ['\\$Recycle.Bin\\%%users.sid%%\\*']\n"
        "    separator: '\\'\nsupported_os: [Windows]\n")
    plan = plan_collection(DirectorySource(root), artifact_names=["TestPerSidFolder"],
                           os_name="windows", registry=load_registry([definitions]))
    (outcome,) = plan.artifacts
    assert outcome.outcome == "unresolved"
    assert outcome.reason.startswith(f"no value for %%users.sid%% ({why}")


def test_collected_from_the_ntfs_image_with_its_hive(tmp_path, keyring):
    """End to end through the image worker: the LocalService profile, known only from the
    SOFTWARE hive's ProfileList, has its NTUSER.DAT collected by the triage set."""
    from sealtrail.acquisition.image_collection import (
        ImageJob,
        image_requested,
        run_image_collection,
    )
    from sealtrail.custody.case import Case
    from tests.acquisition.test_collection import manifest_of

    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    job = ImageJob(image=str(FIXTURES / "images" / "small.ntfs.img"))
    result = run_image_collection(case, keyring.alice.key, job,
                                  requested=image_requested((), (), None, None, job))
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    paths = {m["source"]["path"]: m for m in manifest["members"]}
    service = paths["/Windows/ServiceProfiles/LocalService/NTUSER.DAT"]
    assert "WindowsUserRegistryFiles" in service["artifacts"]
    assert "/Windows/System32/config/SOFTWARE" in paths


def test_fixture_hive_rebuilds_byte_for_byte(tmp_path):
    subprocess.run([sys.executable, str(FIXTURES / "build_hive.py"), str(tmp_path / "h")],
                   check=True, capture_output=True)
    assert (tmp_path / "h").read_bytes() == HIVE.read_bytes()
