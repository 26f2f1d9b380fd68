"""Answers escaped for the language of the file they land in (answers are data, never code)."""

from __future__ import annotations

import json
import re
from typing import Any

# Characters with a meaning anywhere in a line (emphasis, code, links, tables, strikethrough,
# math) get CommonMark's backslash escape; <, > and & become entities so that no HTML survives
# when a forge renders the README. Other punctuation only matters at the start of a line.
_MARKDOWN = {ch: "\\" + ch for ch in "\\`*_[]|~$"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_LINE_START = re.compile(r"^(\s*\d*)([-+#=.)])")


def hcl(value: Any) -> str:
    """A Python value as an HCL literal: strings are JSON-quoted, and ``${`` / ``%{`` (HCL template
    sequences) are doubled so Terraform reads them as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))} = {hcl(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot express {type(value).__name__} in HCL")


def markdown(value: Any) -> str:
    """Text that Markdown (CommonMark, GitLab, GitHub) shows exactly as ``value``."""
    escaped = "".join(_MARKDOWN.get(ch, ch) for ch in str(value))
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped, count=1)


def markdown_cell(value: Any) -> str:
    """Like :func:`markdown`, for a table cell: line breaks become ``<br>`` (a cell is one line)."""
    text = str(value)
    if text == "":
        return "(empty)"
    return "<br>".join(markdown(line) for line in text.splitlines())
