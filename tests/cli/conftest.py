"""The ingested web01 case of the analysis tests, for the commands that read it."""

from tests.analysis.conftest import ingested, web01_case, web01_host  # noqa: F401 - fixtures
