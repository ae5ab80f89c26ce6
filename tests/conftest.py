"""Shared fixtures: keys, a small Linux host tree, and one good sealed case to tamper with."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealtrail.acquisition.session import CollectionResult, requested_fields, run_collection
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.source import DirectorySource
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey, write_key_pair


@dataclass
class KeyPair:
    key: SigningKey
    private: Path
    public: Path


@dataclass
class Keyring:
    alice: KeyPair
    bob: KeyPair
    mallory: KeyPair


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    out = tmp_path / "keys"
    pairs = []
    for name in ("alice", "bob", "mallory"):
        key = SigningKey.generate(name)
        private, public = write_key_pair(key, out)
        pairs.append(KeyPair(key, private, public))
    return Keyring(*pairs)


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_linux_host(root: Path) -> Path:
    """A small Linux root: logs (one rotated and gzipped), users, histories, a data store."""
    write(root, "etc/hostname", b"web01\n")
    write(root, "etc/os-release", b'NAME="Ubuntu"\nID=ubuntu\n')
    write(root, "etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"
                              b"alice:x:1000:1000::/home/alice:/bin/bash\n")
    write(root, "etc/group", b"root:x:0:\nsudo:x:27:alice\n")
    write(root, "var/log/auth.log",
          b"Mar 10 02:14:07 web01 sshd[811]: Failed password for root from 203.0.113.45\n" * 50)
    write(root, "var/log/auth.log.1", b"Mar  9 10:00:00 web01 sshd[1]: Accepted publickey\n")
    write(root, "var/log/auth.log.2.gz", gzip.compress(b"Mar  1 old line\n", mtime=0))
    write(root, "var/log/syslog", b"Mar 10 00:00:01 web01 CRON[1]: (root) CMD (true)\n")
    write(root, "home/alice/.bash_history", b"ls\nsudo -i\n")
    write(root, "root/.bash_history", b"id\n")
    write(root, "srv/data/customers.csv", b"id,name\n" + b"".join(
        b"%d,Customer %04d\n" % (i, i) for i in range(200)))
    return root


@pytest.fixture
def linux_host(tmp_path: Path) -> Path:
    return make_linux_host(tmp_path / "host")


def collect(case: Case, key: SigningKey, host: Path, *, paths: tuple[str, ...] = (),
            artifacts: tuple[str, ...] = ()) -> CollectionResult:
    source = DirectorySource(host)
    plan = plan_collection(source, artifact_names=artifacts, path_globs=paths)
    return run_collection(
        case, key, source, plan, source_label=str(host),
        requested=requested_fields(artifacts, paths, plan.os_name, None),
    )


@dataclass
class SealedCase:
    case: Case
    result: CollectionResult
    keyring: Keyring
    host: Path

    @property
    def bundle(self) -> Path:
        return Path(self.result.bundle_path)


@pytest.fixture
def sealed_case(tmp_path: Path, keyring: Keyring, linux_host: Path) -> SealedCase:
    case = Case.init(tmp_path / "case", title="web01 breach", examiner="Alice",
                     key=keyring.alice.key)
    result = collect(case, keyring.alice.key, linux_host, paths=("srv/data/**",))
    return SealedCase(case, result, keyring, linux_host)
