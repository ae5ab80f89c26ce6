"""The one module that imports PyYAML: safe loading of the data files sealtrail ships or is
given (artifact definitions, rule headers). Never a loader that can build Python objects."""

from __future__ import annotations

from typing import Any

import yaml

#: What a malformed YAML text raises (PyYAML's error type, re-exported).
YAMLError = yaml.YAMLError

# libyaml's C loader where PyYAML was built with it: the catalogue's ~740 definitions load
# faster than with the pure-Python loader the artifacts package uses (bench/README.md).
_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_documents(text: str) -> list[Any]:
    """Every document of a YAML stream, with the fast safe loader; where libyaml refuses a
    text the pure-Python safe loader accepts (it is stricter on a few catalogue files), the
    pure-Python one decides.

    Raises:
        YAMLError: the text is not YAML.
    """
    try:
        return list(yaml.load_all(text, Loader=_FAST_SAFE_LOADER))  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return list(yaml.safe_load_all(text))


def load_one(text: str) -> Any:  # noqa: ANN401 - any YAML value
    """One YAML document, safely. Raises `YAMLError`."""
    return yaml.safe_load(text)
