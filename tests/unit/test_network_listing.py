"""Neutron list semantics: filters, fixed_ips filter, sorting, pages, fields."""

from __future__ import annotations

from typing import Any

import pytest

from liferaft.sim.http import ApiError
from liferaft.sim.network import listing

DOCS: list[dict[str, Any]] = [
    {
        "id": f"p{n}",
        "name": f"port{n % 2}",
        "admin_state_up": n != 3,
        "tags": ["t"] if n else [],
        "fixed_ips": [{"subnet_id": "s1", "ip_address": f"10.0.0.{n + 2}"}],
    }
    for n in range(5)
]


def test_attribute_filters() -> None:
    assert [d["id"] for d in listing.filter_docs(DOCS, [("name", "port1")])] == ["p1", "p3"]
    got = listing.filter_docs(DOCS, [("name", "port1"), ("name", "port0")])
    assert len(got) == 5  # repeated = any of
    assert [d["id"] for d in listing.filter_docs(DOCS, [("admin_state_up", "False")])] == ["p3"]
    assert [d["id"] for d in listing.filter_docs(DOCS, [("fixed_ips", "ip_address=10.0.0.4")])] == [
        "p2"
    ]
    assert listing.filter_docs(DOCS, [("unknown_attr", "x")]) == DOCS
    assert [d["id"] for d in listing.filter_docs(DOCS, [("not-tags", "t")])] == ["p0"]


def test_pages_link_to_the_next_and_stop() -> None:
    chunk, links = listing.page(DOCS, [("limit", "2")], "http://x/ports", "port")
    assert [d["id"] for d in chunk] == ["p0", "p1"]
    assert links == [{"rel": "next", "href": "http://x/ports?limit=2&marker=p1"}]
    chunk, links = listing.page(DOCS, [("limit", "2"), ("marker", "p3")], "http://x/ports", "port")
    assert [d["id"] for d in chunk] == ["p4"]
    assert all(link["rel"] != "next" for link in links)
    with pytest.raises(ApiError) as exc:
        listing.page(DOCS, [("marker", "zz")], "http://x/ports", "port")
    assert exc.value.status == 404 and exc.value.neutron_type == "PortNotFound"
    with pytest.raises(ApiError):
        listing.page(DOCS, [("limit", "-1")], "http://x/ports", "port")


def test_sort_and_fields() -> None:
    body = listing.neutron_list(
        DOCS, [("sort_key", "name"), ("sort_dir", "desc"), ("fields", "id")], "u", "ports", "port"
    )
    assert body == {"ports": [{"id": "p1"}, {"id": "p3"}, {"id": "p0"}, {"id": "p2"}, {"id": "p4"}]}
    with pytest.raises(ApiError):
        listing.sort_docs(DOCS, [("sort_key", "name"), ("sort_dir", "sideways")])
