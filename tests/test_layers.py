"""Imports run one way (README, "Package layout"): cli -> findings -> analysis -> custody ->
collectors, and
cli -> acquisition -> custody. Checked from the source text of every module, including imports
inside functions, so a shortcut taken for convenience fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sealtrail"

#: What each subpackage may import from sealtrail (besides itself and the top-level modules).
MAY_IMPORT = {
    "collectors": set(),
    "custody": {"collectors"},
    "acquisition": {"custody", "collectors"},
    "analysis": {"custody", "collectors"},
    "findings": {"analysis", "custody", "collectors"},
    "cli": {"findings", "analysis", "acquisition", "custody", "collectors"},
}
#: Top-level modules every layer may use (they import no subpackage themselves).
SHARED = {"errors", "terminal", "worker_start", "crashpoint", "__init__"}


def _sealtrail_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sealtrail" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_layer_imports_only_the_layers_below(layer):
    wrong = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = _sealtrail_imports(path) - MAY_IMPORT[layer] - SHARED - {layer}
        if bad:
            wrong[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert not wrong, f"imports against the layering: {wrong}"


def test_top_level_modules_import_no_layer():
    for name in SHARED - {"__init__"}:
        assert not _sealtrail_imports(PACKAGE / f"{name}.py") & set(MAY_IMPORT), name


#: Import name -> where it may be imported. One module each (the brief), with the exceptions
#: that are whole packages built around one library (the CLI around click; the Sigma source
#: around pySigma) and one wart named so it cannot spread further (pyarrow, three modules of
#: the case database that predate this test).
ONE_PLACE = {
    "nacl": {"custody/keys.py"},
    "orjson": {"custody/canonical.py"},
    "yaml": {"collectors/yaml_data.py"},
    "duckdb": {"analysis/store.py"},
    "yara": {"analysis/yara_scan.py"},
    "pytsk3": {"collectors/tsk.py"},
    "pyewf": {"collectors/ewf.py"},
    "pyqcow": {"collectors/qcow.py"},
    "pyregf": {"collectors/registry_hive.py"},
    "evtx": {"analysis/parsers/evtx_windows.py"},
    "Evtx": {"analysis/parsers/evtx_fallback.py"},
    "isal": {"custody/checksums.py"},
    "artifacts": {"collectors/definitions.py"},
    "pyarrow": {"analysis/store.py", "analysis/arrow_rows.py", "analysis/output.py"},
    "sigma": {"findings/sigma/"},
    "click": {"cli/"},
}


def _third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ONE_PLACE)


def test_each_third_party_library_is_imported_in_one_place():
    wrong = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        for name in _third_party_imports(path):
            if not any(rel == place or (place.endswith("/") and rel.startswith(place))
                       for place in ONE_PLACE[name]):
                wrong.setdefault(name, []).append(rel)
    assert not wrong, f"imported outside its one place: {wrong}"
