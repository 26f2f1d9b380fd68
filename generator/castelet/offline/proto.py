"""The provider schema document as tfplugin6 protobuf messages.

The ``tf`` package's own schema classes only know SET and SINGLE nesting, so the messages are
built here directly from the ``terraform providers schema -json`` format: every nesting mode
(single, group, list, set, map) and attribute types as cty JSON type bytes.
"""

from __future__ import annotations

import json
from typing import Any

from tf.gen import tfplugin_pb2 as pb

JSON = dict[str, Any]

_NESTING = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "group": pb.Schema.NestedBlock.GROUP,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
    "map": pb.Schema.NestedBlock.MAP,
}


def cty_type_bytes(cty_type: Any) -> bytes:
    """A cty type in its JSON form (``"string"``, ``["list","string"]``) as Terraform expects it."""
    return json.dumps(cty_type, separators=(",", ":")).encode()


def block_message(block: JSON) -> pb.Schema.Block:
    attributes = [
        pb.Schema.Attribute(
            name=name,
            type=cty_type_bytes(attribute["type"]),
            required=bool(attribute.get("required")),
            optional=bool(attribute.get("optional")),
            computed=bool(attribute.get("computed")),
            sensitive=bool(attribute.get("sensitive")),
            description_kind=pb.PLAIN,
        )
        for name, attribute in sorted(block.get("attributes", {}).items())
    ]
    block_types = [
        pb.Schema.NestedBlock(
            type_name=name,
            block=block_message(nested["block"]),
            nesting=_NESTING[nested["nesting_mode"]],
            min_items=int(nested.get("min_items", 0)),
            max_items=int(nested.get("max_items", 0)),
        )
        for name, nested in sorted(block.get("block_types", {}).items())
    ]
    return pb.Schema.Block(attributes=attributes, block_types=block_types, description_kind=pb.PLAIN)


def schema_message(schema: JSON) -> pb.Schema:
    return pb.Schema(version=int(schema.get("version", 0)), block=block_message(schema["block"]))


def provider_schema_response(provider: JSON) -> pb.GetProviderSchema.Response:
    """The complete GetProviderSchema answer for one provider of a schema document."""
    return pb.GetProviderSchema.Response(
        provider=schema_message(provider["provider"]),
        provider_meta=pb.Schema(block=pb.Schema.Block(description_kind=pb.PLAIN)),
        resource_schemas={name: schema_message(s) for name, s in provider["resource_schemas"].items()},
        data_source_schemas={name: schema_message(s) for name, s in provider["data_source_schemas"].items()},
        server_capabilities=pb.ServerCapabilities(get_provider_schema_optional=True),
    )
