"""Text a terminal cannot be tricked by: one escape for every human-readable output.

Member names, manifest fields, ledger values, image metadata and query results come from
evidence or case files, which an attacker may have written. Printed raw, a newline splits a
listing into a forged line, ``ESC [2K CR`` erases what was shown, and a right-to-left override
makes ``txt.exe`` look like ``exe.txt``. Every command's text output (not ``--json``, which JSON
already escapes) passes such values through ``printable``.

The escape (docs/design.md, "Terminal output: one escape, reversible"), per character:

- ``\\`` becomes ``\\\\``, so a backslash in the output always starts an escape;
- newline, carriage return and tab become ``\\n``, ``\\r``, ``\\t``;
- every other C0 control (U+0000-U+001F), DEL (U+007F) and C1 control (U+0080-U+009F)
  becomes ``\\xHH``;
- bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), the line and
  paragraph separators (U+2028, U+2029) and lone surrogates (U+D800-U+DFFF, what an
  undecodable file name byte becomes) become ``\\uHHHH``;
- everything else is itself.

Hex digits are lower case. No escape is a prefix of another and a backslash never stands for
itself, so the mapping is injective: the original text can always be read back.
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BYTE_LIKE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_WIDE = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028,
         0x2029, *range(0xD800, 0xE000)]

_TABLE: dict[int, str] = {cp: f"\\x{cp:02x}" for cp in _BYTE_LIKE}
_TABLE.update({cp: f"\\u{cp:04x}" for cp in _WIDE})
_TABLE.update({ord(c): escaped for c, escaped in _NAMED.items()})


def printable(value: object) -> str:
    """``str(value)`` with every character a terminal could act on escaped (module docstring)."""
    return str(value).translate(_TABLE)
