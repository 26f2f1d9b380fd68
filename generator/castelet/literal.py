"""Cookiecutter renders every answer as a Jinja template; Castelet's answers are data.

Cookiecutter passes each answer (from ``cookiecutter.json``, ``--no-input key=value``, a user
config or ``castelet new``) through ``Environment.from_string(value).render()``: ``{{ 7*7 }}``
becomes ``49`` and ``{{ lipsum.__globals__... }}`` runs code as the rendering user. Blueprints
load :class:`LiteralAnswers` through ``"_extensions"`` in their ``cookiecutter.json``; its
``preprocess`` turns every string given to ``from_string`` into a template that prints that
string unchanged, except the few sources that are Castelet's own templates: the template
folder's name and the shared hooks. File templates (loaded by name) are untouched.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2.ext import Extension

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
HOOKS_DIR = Path(__file__).with_name("cookiecutter_hooks")


@cache
def own_templates() -> frozenset[str]:
    """The strings cookiecutter renders with ``from_string`` that Castelet wrote itself."""
    hooks = {path.read_text(encoding="utf-8") for path in HOOKS_DIR.glob("*.py")}
    return frozenset({TEMPLATE_DIR, *hooks})


def literal_template(text: str) -> str:
    """A Jinja template whose output is exactly ``text``: one string literal made only of
    ``\\UXXXXXXXX`` escapes, which Jinja's lexer decodes and nothing can break out of."""
    escaped = "".join(f"\\U{ord(char):08x}" for char in text)
    return '{{ "' + escaped + '" }}'


class LiteralAnswers(Extension):
    """Makes cookiecutter's rendering of answers the identity (see the module docstring)."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None or source in own_templates():
            return source
        return literal_template(source)
