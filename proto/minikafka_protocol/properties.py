"""Java's .properties format, as Kafka's tools read server.properties and client.properties."""

from __future__ import annotations

import re
from pathlib import Path


class PropertiesError(ValueError):
    """A line that is not a property; the message names the file and the line."""


def parse_properties(text: str, source: str) -> dict[str, str]:
    """Java's .properties format: `key=value`, `key: value` or `key value`; # and ! comments;
    a trailing backslash continues a line."""
    props: dict[str, str] = {}
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if not pending and (not stripped or stripped[0] in "#!"):
            continue
        if not pending:
            start = number
        trailing = len(stripped) - len(stripped.rstrip("\\"))
        if trailing % 2 == 1:
            pending += stripped[:-1]
            continue
        logical.append((start, pending + stripped))
        pending = ""
    if pending:
        logical.append((start, pending))
    for number, line in logical:
        match = re.match(r"^((?:\\.|[^=:\s\\])+)\s*[=:\s]\s*(.*)$|^((?:\\.|[^=:\s\\])+)\s*$", line)
        if match is None:
            raise PropertiesError(f"{source} line {number}: cannot parse '{line.strip()}'")
        key = match[1] or match[3]
        value = match[2] if match[1] else ""
        props[_unescape(key)] = _unescape(value.rstrip())
    return props


def _unescape(text: str) -> str:
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), text)


def read_properties(path: str) -> dict[str, str]:
    """A properties file; PropertiesError (one line) if it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PropertiesError(f"Cannot read properties file {path}: {e.strerror}") from None
    return parse_properties(text, path)
