"""The few registry values the knowledge base needs, read from a SOFTWARE hive (libregf).

The only module that imports ``pyregf`` (libregf-python, the libyal REGF reader, from the
same family as the libewf and libqcow bindings sealtrail uses for images). Read:

- ``Microsoft\\Windows NT\\CurrentVersion\\SystemRoot``: where Windows lives (``C:\\Windows``,
  ``C:\\WINNT``);
- ``Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\<SID>\\ProfileImagePath``: every
  user profile the host knows, with its SID, wherever the profile folder is.

The hive is evidence and may be hostile: for an image source this runs in the image worker
(with the rest of the image parsing); for a folder source in the collecting process. Any
failure to read is a `HiveError` naming the hive; the caller carries on without the values.
Transaction logs (``SOFTWARE.LOG1/2``) are not replayed: a dirty hive is read as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import pyregf

__all__ = ["HiveError", "Profile", "SoftwareHive", "read_software_hive"]

_CURRENT_VERSION = "Microsoft\\Windows NT\\CurrentVersion"
_PROFILE_LIST = _CURRENT_VERSION + "\\ProfileList"
_MAX_PROFILES = 10_000  # a hostile hive could list millions


class HiveError(ValueError):
    """A hive that cannot be read.

    Attributes:
        hive: where the hive is (as shown to the user).
        reason: what went wrong.
    """

    def __init__(self, hive: str, reason: str) -> None:
        self.hive = hive
        self.reason = reason
        super().__init__(f"{hive}: {reason}")


@dataclass(frozen=True, slots=True)
class Profile:
    """One ProfileList entry: the SID and the profile folder as the registry writes it
    (environment variables such as ``%SystemDrive%`` not expanded)."""

    sid: str
    path: str


@dataclass(frozen=True, slots=True)
class SoftwareHive:
    """What was read: ``system_root`` (None when absent) and the profiles, in hive order."""

    system_root: str | None
    profiles: tuple[Profile, ...]


def _string(key: pyregf.key | None, name: str) -> str | None:
    if key is None:
        return None
    value = key.get_value_by_name(name)
    if value is None:
        return None
    try:
        text = value.get_data_as_string()
    except (OSError, TypeError):  # not a string value
        return None
    if not isinstance(text, str):
        return None
    return text.rstrip("\0") or None


def read_software_hive(stream: BinaryIO, shown_as: str) -> SoftwareHive:
    """Read SystemRoot and the ProfileList from a SOFTWARE hive given as a seekable stream.

    Raises:
        HiveError: not a REGF hive, or a damaged one libregf cannot read.
    """
    hive = pyregf.file()
    try:
        hive.open_file_object(stream)
    except (OSError, ValueError) as exc:
        raise HiveError(shown_as, f"not a readable registry hive ({exc})") from exc
    try:
        system_root = _string(hive.get_key_by_path(_CURRENT_VERSION), "SystemRoot")
        profiles: list[Profile] = []
        listing = hive.get_key_by_path(_PROFILE_LIST)
        if listing is not None:
            for index in range(min(listing.number_of_sub_keys, _MAX_PROFILES)):
                entry = listing.get_sub_key(index)
                path = _string(entry, "ProfileImagePath")
                if entry.name and path:
                    profiles.append(Profile(entry.name, path))
    except (OSError, ValueError) as exc:
        raise HiveError(shown_as, f"damaged registry hive ({exc})") from exc
    finally:
        hive.close()
    return SoftwareHive(system_root, tuple(profiles))
