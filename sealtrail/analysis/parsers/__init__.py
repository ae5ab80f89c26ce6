"""Parsers, one module each, registered explicitly in ``registry.py``."""
