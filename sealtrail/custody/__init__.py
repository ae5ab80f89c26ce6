"""Custody: keys, signed bundles, the append-only ledger, checkpoints and verification."""
