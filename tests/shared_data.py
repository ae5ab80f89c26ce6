"""The one place tests find data that lives outside the project (../shared).

``SEALTRAIL_UPSTREAM`` names the upstream fixtures folder (default ``../shared/fixtures/upstream``
beside the checkout); the vectors folder is ``SEALTRAIL_VECTORS`` (default ``../shared/vectors``).
Tests that need them call ``upstream_path``/``vector_path``, which skip with the reason when the
folder is absent. Nothing is copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else default


def upstream_dir() -> Path:
    return _folder("SEALTRAIL_UPSTREAM", _CHECKOUT.parent / "shared" / "fixtures" / "upstream")


def vectors_dir() -> Path:
    return _folder("SEALTRAIL_VECTORS", _CHECKOUT.parent / "shared" / "vectors")


def _require(base: Path, env: str, relative: str) -> Path:
    path = base / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (set {env} to the shared folder that holds it)")
    return path


def upstream_path(relative: str) -> Path:
    """Path of an upstream fixture, or skip the test naming what is missing."""
    return _require(upstream_dir(), "SEALTRAIL_UPSTREAM", relative)


def vector_path(relative: str) -> Path:
    """Path of a public test vector file or folder, or skip naming what is missing."""
    return _require(vectors_dir(), "SEALTRAIL_VECTORS", relative)
