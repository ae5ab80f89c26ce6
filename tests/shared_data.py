"""The one place tests find data that lives outside the project (../shared).

``SEALTRAIL_UPSTREAM`` names the upstream fixtures folder (default ``../shared/fixtures/upstream``
beside the checkout); the vectors folder is ``SEALTRAIL_VECTORS`` (default ``../shared/vectors``);
the SigmaHQ rules and regression data ``SEALTRAIL_SIGMA`` (default ``../shared/fixtures/sigma``).
Tests that need them call ``upstream_path``/``vector_path``, which skip with the reason when the
folder is absent. Nothing is copied into the project.

``SEALTRAIL_REQUIRE_SHARED=1`` turns each of those skips into a failure, so a suite cannot pass by
not running what needs shared data. ``scripts/test`` (what the README and CI run) sets it unless
it is already set; ``SEALTRAIL_REQUIRE_SHARED=0 scripts/test`` runs without ``../shared``.
The same switch covers the system tools scripts/setup installs (``tool_absent``).

A test parametrised over the files of a shared folder gets one case per file; when the folder is
absent it gets one placeholder case (id ``<absent>``) that reaches ``upstream_path`` or
``vector_path`` and skips, or fails under the switch, naming the folder. Never zero cases: pytest
reports an empty parametrisation as one quiet skip that no switch reaches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

_CHECKOUT = Path(__file__).resolve().parent.parent
REQUIRE_SHARED = "SEALTRAIL_REQUIRE_SHARED"
ABSENT = "<absent>"


def _folder(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else default


def upstream_dir() -> Path:
    return _folder("SEALTRAIL_UPSTREAM", _CHECKOUT.parent / "shared" / "fixtures" / "upstream")


def vectors_dir() -> Path:
    return _folder("SEALTRAIL_VECTORS", _CHECKOUT.parent / "shared" / "vectors")


def sigma_dir() -> Path:
    return _folder("SEALTRAIL_SIGMA", _CHECKOUT.parent / "shared" / "fixtures" / "sigma")


def shared_required() -> bool:
    """Whether absent shared data fails the test instead of skipping it."""
    return os.environ.get(REQUIRE_SHARED, "") not in ("", "0")


def shared_absent(reason: str) -> NoReturn:
    """Skip the test (shared data is absent), or fail it under ``SEALTRAIL_REQUIRE_SHARED``."""
    if shared_required():
        pytest.fail(f"{reason}; {REQUIRE_SHARED} is set, so this fails instead of skipping",
                    pytrace=False)
    pytest.skip(reason)


def tool_absent(reason: str) -> NoReturn:
    """Skip the test (a system tool that scripts/setup installs is missing), or fail it under
    ``SEALTRAIL_REQUIRE_SHARED``: CI runs scripts/setup, so there a missing tool is a fault."""
    shared_absent(reason)


def _require(base: Path, env: str, relative: str) -> Path:
    path = base / relative
    if not path.exists():
        shared_absent(f"{path} is absent (set {env} to the shared folder that holds it)")
    return path


def upstream_path(relative: str) -> Path:
    """Path of an upstream fixture, or skip (fail under the switch) naming what is missing."""
    return _require(upstream_dir(), "SEALTRAIL_UPSTREAM", relative)


def sigma_path(relative: str) -> Path:
    """Path in the SigmaHQ fixtures (rules, regression data), or skip (fail) naming it."""
    return _require(sigma_dir(), "SEALTRAIL_SIGMA", relative)


def vector_path(relative: str) -> Path:
    """Path of a public test vector file or folder, or skip (fail) naming what is missing."""
    return _require(vectors_dir(), "SEALTRAIL_VECTORS", relative)
