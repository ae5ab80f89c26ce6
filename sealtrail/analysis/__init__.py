"""Analysis: parsers and the DuckDB case database. Nothing here yet (issue #3 builds it)."""
