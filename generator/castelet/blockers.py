""""Before you apply": what a default render still lacks before it can be applied.

Two kinds: a shared question whose default is only a placeholder (``placeholder: true`` in
questions.yaml: the domain, the admins' e-mail and network) on a real cloud, and a blueprint
question whose empty answer blocks the apply (``before_apply:`` in the manifest, e.g. the
release checksum). The list is printed by ``castelet new`` and written in the README; the same
rules are Terraform variable validations in the deployment (``condition``), so ``nox -s plan``
and ``castelet check`` refuse while one remains, judged on the current terraform.tfvars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from castelet.deployment import DEPLOYMENT_VARIABLES, settings_of
from castelet.escape import hcl
from castelet.manifest import Blueprint, shared_questions


@dataclass(frozen=True)
class Blocker:
    question: str
    variable: str  # the Terraform variable that holds the answer
    condition: str  # HCL: true once the blocker is resolved
    message: dict[str, str]

    def text(self, lang: str = "en") -> str:
        return self.message[lang]


def _placeholder(name: str, variable: str, default: Any) -> Blocker:
    where = f"`{variable}` in terraform.tfvars"
    return Blocker(
        question=name, variable=variable, condition=f"var.{variable} != {hcl(default)}",
        message={"en": f"{name} is still the placeholder {default!s}: set the real value ({where}).",
                 "fr": f"{name} vaut encore la valeur d'exemple {default!s} : indiquez la vraie valeur ({where})."},
    )


def before_apply(bp: Blueprint, answers: dict[str, Any]) -> list[Blocker]:
    """Every blocker of this render, in question order."""
    blockers: list[Blocker] = []
    library = shared_questions()
    settings = settings_of(bp, answers)
    for q in bp.questions:
        shared = library.get(q.name, {})
        variable = DEPLOYMENT_VARIABLES.get(q.name)
        if (shared.get("placeholder") and variable and answers["cloud"] == "openstack"
                and answers[q.name] == shared["default"]):
            blockers.append(_placeholder(q.name, variable, shared["default"]))
        if q.before_apply and q.name in settings and answers[q.name] == "":
            blockers.append(Blocker(question=q.name, variable="settings",
                                    condition=f"lookup(var.settings, {hcl(q.name)}, \"\") != \"\"",
                                    message=dict(q.before_apply)))
    return blockers


# Values that resolve a blocker for a check (plan, compile), by question type: what a user
# writes when following "Before you apply". Never rendered into a real deployment.
CHECK_VALUES = {"sha256": "0" * 64, "domain": "portal.mylab.ca", "email": "ada@mylab.ca",
                "cidr": "203.0.113.0/24", "git_url": "https://git.mylab.ca/lab/app.git", "git_ref": "main",
                "cidrs": "203.0.113.0/24", "databases": "lab"}


def resolved_for_checks(bp: Blueprint, answers: dict[str, Any]) -> dict[str, Any]:
    """``answers`` with every "Before you apply" item of that render given a check value."""
    from castelet.answers import validate

    blockers = before_apply(bp, validate(bp, answers))
    return {**answers, **{b.question: CHECK_VALUES[bp.question(b.question).type] for b in blockers}}
