"""What castelet's plan-only stand-in of terraform-provider-openstack does with values.

Pure functions on decoded cty values (dicts, lists, str, numbers, bool, None, :data:`UNKNOWN`)
and schema blocks in the ``terraform providers schema -json`` format; the gRPC transport lives
in :mod:`castelet.offline.plugin`.

* validation rejects values on computed-only attributes (Terraform core does not);
* a create plan marks every unset computed attribute unknown;
* a data source read keeps its configuration and fills the other attributes with placeholders of
  the right type (see :func:`read_data_source`), since Terraform needs known values at plan time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgpack

from castelet.offline import catalogue

JSON = dict[str, Any]
# An attribute path: ("attribute", name) and ("key", list index or map key) steps.
Step = tuple[str, str | int]
Path = tuple[Step, ...]

# cty's msgpack encoding of an unknown value is extension type 0 (the payload may carry
# refinements, which the stand-in ignores).
UNKNOWN = msgpack.ExtType(0, b"")

# Where the launcher tells the plugin process to find the cached schema files.
SCHEMA_JSON_ENV = "CASTELET_OFFLINE_SCHEMA_JSON"
SCHEMA_PROTO_ENV = "CASTELET_OFFLINE_SCHEMA_PB"

STANDIN_NAME = "castelet offline stand-in"
APPLY_REFUSED = f"{STANDIN_NAME}: plan only; use the real terraform-provider-openstack to apply"
_ID_NAMESPACE = uuid.UUID("5f1b8f53-5a2c-4c63-9a37-0cf6c0a5d3b1")


def is_unknown(value: Any) -> bool:
    return isinstance(value, msgpack.ExtType) and value.code == 0


def decode(data: bytes) -> Any:
    """A msgpack DynamicValue payload as Python values (unknowns become :data:`UNKNOWN`)."""
    if not data:
        return None
    return msgpack.unpackb(data, ext_hook=_ext_hook)


def _ext_hook(code: int, payload: bytes) -> Any:
    return UNKNOWN if code == 0 else msgpack.ExtType(code, payload)


def encode(value: Any) -> bytes:
    return msgpack.packb(value)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Problem:
    """A diagnostic the stand-in reports: summary, detail and the attribute path it concerns."""

    summary: str
    detail: str
    path: Path = ()
    warning: bool = False


def _is_computed_only(attribute: JSON) -> bool:
    return bool(attribute.get("computed")) and not attribute.get("optional") and not attribute.get("required")


def _elements(nesting: str, value: Any) -> list[tuple[str | int | None, Any]]:
    """(key, element) of a nested block value; key None where Terraform cannot address it (sets)."""
    if value is None or is_unknown(value):
        return []
    if nesting in ("single", "group"):
        return [(None, value)]
    if nesting == "map":
        return [(key, item) for key, item in value.items()]
    if nesting == "list":
        return list(enumerate(value))
    return [(None, item) for item in value]


def computed_only_problems(type_name: str, block: JSON, config: Any, path: Path = ()) -> list[Problem]:
    """Errors for every computed-only attribute that the configuration sets (to anything non-null)."""
    problems: list[Problem] = []
    if not isinstance(config, dict):
        return problems
    for name, attribute in block.get("attributes", {}).items():
        if _is_computed_only(attribute) and config.get(name) is not None:
            dotted = ".".join(str(value) for kind, value in (*path, ("attribute", name)) if kind == "attribute")
            problems.append(Problem(
                f'Computed attribute "{dotted}" cannot be set',
                f'In {type_name}, "{dotted}" is computed only: terraform-provider-openstack sets it '
                "after creating the object, so the configuration must not. Remove this argument. "
                f"(reported by the {STANDIN_NAME}, from the provider's schema)",
                (*path, ("attribute", name)),
            ))
    for name, nested in block.get("block_types", {}).items():
        for key, element in _elements(nested["nesting_mode"], config.get(name)):
            inner: Path = (*path, ("attribute", name))
            if key is not None:
                inner = (*inner, ("key", key))
            problems += computed_only_problems(type_name, nested["block"], element, inner)
    return problems


def _map_elements(nesting: str, value: Any, function: Callable[[Any], Any]) -> Any:
    """Apply ``function`` to each element of a nested block value, keeping its shape."""
    if value is None or is_unknown(value):
        return value
    if nesting in ("single", "group"):
        return function(value)
    if nesting == "map":
        return {key: function(item) for key, item in value.items()}
    return [function(item) for item in value]


def plan_create(block: JSON, proposed: Any) -> Any:
    """Planned new state of a resource to create: unset computed attributes become unknown."""
    if not isinstance(proposed, dict):
        return proposed
    planned = dict(proposed)
    for name, attribute in block.get("attributes", {}).items():
        if attribute.get("computed") and planned.get(name) is None:
            planned[name] = UNKNOWN
    for name, nested in block.get("block_types", {}).items():
        if name in planned:
            planned[name] = _map_elements(nested["nesting_mode"], planned[name], partial(plan_create, nested["block"]))
    return planned


def placeholder(cty_type: Any) -> Any:
    """A known, empty value of a cty type."""
    if cty_type == "string":
        return ""
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    kind = cty_type[0]
    if kind in ("list", "set", "tuple"):
        return []
    if kind == "map":
        return {}
    if kind == "object":
        return {name: None for name in cty_type[1]}
    return None


def _fill(block: JSON, identity: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, attribute in block.get("attributes", {}).items():
        current = filled.get(name)
        if current is None or is_unknown(current):
            if name == "id":
                filled[name] = str(uuid.uuid5(_ID_NAMESPACE, identity))
            else:
                filled[name] = placeholder(attribute["type"])
    for name, nested in block.get("block_types", {}).items():
        if name in filled:
            filled[name] = _map_elements(
                nested["nesting_mode"], filled[name], partial(_fill, nested["block"], f"{identity}/{name}")
            )
    return filled


def _catalogue_answer(type_name: str, config: JSON) -> JSON:
    """Attributes the Alliance catalogue fills in for a lookup (raises NotInCatalogue)."""

    def given(name: str) -> Any:
        value = config.get(name)
        return None if value is None or is_unknown(value) else value

    if type_name == "openstack_compute_flavor_v2" and isinstance(given("name"), str):
        found = catalogue.flavor(given("name"))
        return {"vcpus": found.vcpus, "ram": found.ram_mb, "disk": found.disk_gb, "ephemeral": found.ephemeral_gb}
    if type_name == "openstack_images_image_v2":
        name = catalogue.image(given("name"), given("name_regex"))
        return {} if name is None else {"name": name}
    if type_name == "openstack_networking_network_v2":
        name = catalogue.network(given("name"), given("external"))
        return {} if name is None else {"name": name}
    return {}


def read_data_source(type_name: str, block: JSON, config: Any) -> tuple[Any, list[Problem]]:
    """The stand-in's answer to a data source read during plan.

    The configuration is kept; every attribute it leaves unset gets a placeholder, as the real
    provider (SDKv2) sets all of them after a read, optional filters included: ``id`` a UUID
    derived from the type and configuration (stable across runs), strings ``""``, numbers ``0``,
    bools ``false``, collections empty. Images, flavors and networks are answered from the small
    catalogue of the Alliance clouds (:mod:`castelet.offline.catalogue`): a name a real cloud
    would not have (a placeholder, a typo) is an error, as the real lookup would be.
    """
    if not isinstance(config, dict):
        return config, []
    try:
        answer = _catalogue_answer(type_name, config)
    except catalogue.NotInCatalogue as exc:
        return config, [Problem(exc.summary, exc.detail)]
    identity = type_name + json.dumps(config, sort_keys=True, default=str)
    state = _fill(block, identity, {**config, **{k: v for k, v in answer.items() if k in block.get("attributes", {})}})
    return state, []


def conform(block: JSON, value: Any) -> Any:
    """A stored state reshaped to the schema: unknown attributes dropped, missing ones null."""
    if not isinstance(value, dict):
        return value
    shaped = {name: value.get(name) for name in block.get("attributes", {})}
    for name, nested in block.get("block_types", {}).items():
        default: Any = [] if nested["nesting_mode"] in ("list", "set") else None
        item = value.get(name, default)
        if nested["nesting_mode"] == "map" and item is None:
            item = {}
        shaped[name] = _map_elements(nested["nesting_mode"], item, partial(conform, nested["block"]))
    return shaped
