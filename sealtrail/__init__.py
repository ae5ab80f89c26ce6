"""sealtrail: evidence collection with signed bundles and a verifiable custody ledger."""

from __future__ import annotations

__version__ = "0.1.0"
TOOL_NAME = "sealtrail"
