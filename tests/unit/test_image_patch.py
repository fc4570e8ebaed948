"""Glance JSON-patch rules and listing order, on plain Image objects."""

from __future__ import annotations

from typing import Any

import pytest

from liferaft.sim.http import ApiError
from liferaft.sim.image import listing, patch
from liferaft.sim.image.models import Image


def _image(**kw: Any) -> Image:
    kw.setdefault("created_at", 0.0)
    return Image(id=kw.pop("id", "i1"), owner="p", updated_at=0.0, **kw)


def test_add_replace_remove_properties() -> None:
    img = _image(name="a")
    patch.apply(
        img,
        [
            {"op": "add", "path": "/color", "value": "red"},
            {"op": "replace", "path": "/name", "value": "b"},
            {"op": "add", "path": "/min_ram", "value": 128},
        ],
        is_admin=False,
        project_id="p",
    )
    assert (img.name, img.min_ram, img.properties) == ("b", 128, {"color": "red"})
    patch.apply(img, [{"op": "remove", "path": "/color"}], is_admin=False, project_id="p")
    assert img.properties == {}


@pytest.mark.parametrize(
    "ops, status",
    [
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "add", "path": "/checksum", "value": "x"}], 403),
        ([{"op": "add", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "add", "path": "/visibility", "value": "everyone"}], 400),
        ([{"op": "add", "path": "/protected", "value": "yes"}], 400),
        ([{"op": "move", "path": "/name", "value": "x"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ({"op": "add"}, 400),
    ],
)
def test_bad_operations(ops: Any, status: int) -> None:
    img = _image(name="a", properties={"keep": "1"})
    with pytest.raises(ApiError) as exc:
        patch.apply(img, ops, is_admin=False, project_id="p")
    assert exc.value.status == status
    assert img.name == "a" and img.properties == {"keep": "1"}


def test_listing_order_and_pages() -> None:
    images = [_image(id=f"id{n}", name=f"n{n}", created_at=float(n)) for n in range(5)]
    ordered = listing.sort(images, [])
    assert [i.id for i in ordered] == ["id4", "id3", "id2", "id1", "id0"]
    chunk, nxt = listing.page(ordered, [("limit", "2")])
    assert [i.id for i in chunk] == ["id4", "id3"]
    assert nxt == "/v2/images?limit=2&marker=id3"
    chunk, nxt = listing.page(ordered, [("limit", "2"), ("marker", "id0")])
    assert chunk == [] and nxt is None
    by_name = listing.sort(images, [("sort_key", "name"), ("sort_dir", "asc")])
    assert [i.name for i in by_name] == ["n0", "n1", "n2", "n3", "n4"]
    with pytest.raises(ApiError):
        listing.sort(images, [("sort_key", "bogus")])


def test_listing_filters() -> None:
    images = [
        _image(id="a", name="x", properties={"tier": "gold"}),
        _image(id="b", name="y", os_hidden=True),
        _image(id="c", name="z", visibility="community"),
    ]
    assert [i.id for i in listing.select(images, [], "p2", False)] == ["a"]
    assert [i.id for i in listing.select(images, [("os_hidden", "true")], "p2", False)] == ["b"]
    assert [i.id for i in listing.select(images, [("tier", "gold")], "p2", False)] == ["a"]
    assert [i.id for i in listing.select(images, [("name", "in:x,z")], "p", False)] == ["a", "c"]
    with pytest.raises(ApiError):
        listing.select(images, [("protected", "maybe")], "p", False)
