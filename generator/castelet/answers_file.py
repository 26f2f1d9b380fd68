"""Answers files (``castelet new --answers FILE``), read strictly before any answer is validated.

An answers file may come from anyone, so reading it is bounded: the size is capped before
parsing, YAML anchors and aliases are refused at the first one (a "billion laughs" file costs
nothing), nesting stops at the depth an answers file has, and every message is short.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol

import yaml

from castelet.answers import AnswerProblem, AnswersError, bounded_repr

#: Largest accepted answers file, in bytes.
MAX_BYTES = 64 * 1024
FIELD = "--answers"
EXPECTED = ("a YAML mapping of question: answer (single values; no anchors, aliases or nesting; "
            f"at most {MAX_BYTES // 1024} KiB), or a .castelet-answers.yaml")

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}
# A plain file is one mapping; an earlier render's .castelet-answers.yaml holds `answers:` inside.
_MAX_DEPTH = 2


class _Mark(Protocol):
    line: int


class _Refused(Exception):
    def __init__(self, reason: str, mark: _Mark | None = None) -> None:
        super().__init__(reason)
        self.reason = f"line {mark.line + 1}: {reason}" if mark is not None else reason


class _AnswersLoader(yaml.SafeLoader):
    """A SafeLoader for answers: no anchors or aliases, no nesting beyond an answers file's, and
    plain scalars resolved as YAML 1.2's core schema without floats (``no``, ``010``, ``1:30``,
    ``2024-01-01`` and ``1.5`` stay text; ``true``/``false``, decimal integers and ``null`` do not)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's class-level registry)

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused("aliases (*name) are not accepted", event.start_mark)
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused("anchors (&name) are not accepted", event.start_mark)
        if isinstance(event, yaml.CollectionStartEvent):
            if self._depth >= _MAX_DEPTH:
                raise _Refused("nested mappings or lists are not accepted (answers are single values)",
                               event.start_mark)
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", list("-+0123456789")),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _AnswersLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), _first)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _read_bounded(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_BYTES:
                raise _Refused(f"{size} bytes, more than the limit of {MAX_BYTES} bytes ({MAX_BYTES // 1024} KiB)")
            data = handle.read(MAX_BYTES + 1)  # a pipe or device reports no size
    except OSError as exc:
        raise _Refused(f"cannot be read: {_cut(exc.strerror or type(exc).__name__)}") from None
    if len(data) > MAX_BYTES:
        raise _Refused(f"more than the limit of {MAX_BYTES} bytes ({MAX_BYTES // 1024} KiB)")
    return data


def _entries(loader: _AnswersLoader, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The mapping's entries by key: keys are text, none twice."""
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            raise _Refused("question names must be text (quote them)", key_node.start_mark)
        key = str(key_node.value)
        if key in entries:
            first = entries[key][0].start_mark.line + 1
            raise _Refused(f"{bounded_repr(key, 40)} is given twice (first on line {first})", key_node.start_mark)
        entries[key] = (key_node, value_node)
    return entries


def _scalars(loader: _AnswersLoader, entries: dict[str, tuple[yaml.Node, yaml.Node]]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for key, (_, value_node) in entries.items():
        if not isinstance(value_node, yaml.ScalarNode):
            kind = "a mapping" if isinstance(value_node, yaml.MappingNode) else "a list"
            raise _Refused(f"the answer to {bounded_repr(key, 40)} is {kind}, but answers are single values",
                           value_node.start_mark)
        if value_node.tag not in _SCALAR_TAGS:
            raise _Refused(f"the tag {bounded_repr(value_node.tag, 40)} is not accepted", value_node.start_mark)
        try:
            answers[key] = loader.construct_object(value_node)
        except (ValueError, yaml.YAMLError):  # e.g. an integer of more digits than Python converts
            raise _Refused(f"the answer to {bounded_repr(key, 40)} cannot be read", value_node.start_mark) from None
    return answers


def _parse(text: str) -> dict[str, Any]:
    try:
        loader = _AnswersLoader(text)  # checks that every character may appear in YAML
    except yaml.YAMLError as exc:
        raise _yaml_refusal(exc) from None
    try:
        root = loader.get_single_node()
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
            return {}  # empty, only comments, or an empty document
        if not isinstance(root, yaml.MappingNode):
            raise _Refused("the file is not a mapping of question: answer", root.start_mark)
        entries = _entries(loader, root)
        inner = entries.get("answers", (None, None))[1]
        if isinstance(inner, yaml.MappingNode):  # a .castelet-answers.yaml from an earlier render
            _scalars(loader, {k: v for k, v in entries.items() if k != "answers"})
            return _scalars(loader, _entries(loader, inner))
        return _scalars(loader, entries)
    except yaml.YAMLError as exc:
        raise _yaml_refusal(exc) from None
    finally:
        loader.dispose()


def _yaml_refusal(exc: yaml.YAMLError) -> _Refused:
    """A short account of a YAML error (PyYAML's own messages quote the offending text)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(str(part) for part in (exc.context, exc.problem) if part) or "unreadable"
        return _Refused(f"not valid YAML: {_cut(what, 120)}", mark)
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        return _Refused(f"the character U+{exc.character:04X} at position {exc.position + 1} is not allowed in YAML")
    return _Refused("not readable as YAML")


def read_answers_file(path: Path) -> dict[str, Any]:
    """The answers of ``path``: a YAML mapping of question: answer, or an earlier render's
    ``.castelet-answers.yaml`` (its ``answers:`` mapping).

    Refuses files over 64 KiB (before parsing), anchors and aliases, non-text or duplicate
    question names, and lists or mappings as answers. Answers are returned as written (text,
    integers, booleans, None): :func:`castelet.answers.validate` checks them. Raises AnswersError,
    whose messages are short whatever the file holds.
    """
    try:
        raw = _read_bounded(Path(path))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(f"not UTF-8 text (byte {exc.start + 1})") from None
        return _parse(text)
    except _Refused as refusal:
        raise AnswersError([AnswerProblem(FIELD, str(path), EXPECTED, refusal.reason)]) from None
