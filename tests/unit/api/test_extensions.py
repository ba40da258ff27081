"""``GET /v2.0/extensions`` lists what is implemented, with Neutron's aliases, names and descriptions."""

from __future__ import annotations

from tests.unit.api.conftest import Api


def test_extension_list_has_quotas_and_every_entry_is_complete(api: Api) -> None:
    exts = api.ok("GET", "/v2.0/extensions")["extensions"]
    by_alias = {e["alias"]: e for e in exts}
    assert len(by_alias) == len(exts)
    for e in exts:
        assert set(e) == {"alias", "name", "description", "updated", "links"} and e["name"] and e["description"]
    assert by_alias["quotas"]["name"] == "Quota management support"
    assert by_alias["quota_details"]["description"] == "Expose functions for quotas usage statistics per project"
    assert {"security-group", "binding", "provider", "multi-provider", "standard-attr-tag"} <= set(by_alias)
    one = api.ok("GET", "/v2.0/extensions/quota_details")["extension"]
    assert one == by_alias["quota_details"]
    api.err("GET", "/v2.0/extensions/no-such-thing", status=404)
