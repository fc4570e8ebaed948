"""Recovery mappings in the controller's config: per protected site, checked at the edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from liferaft.config import load_config
from liferaft.errors import ConfigError

BASE = "site: {name: west}\npeers: [{name: east}]\nprotection:\n  mappings:\n"


def load(tmp_path: Path, mappings: str) -> object:
    p = tmp_path / "liferaft.yaml"
    p.write_text(BASE + mappings)
    return load_config(p)


def test_mappings_per_protected_site(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        "    east:\n      flavors: {m1.east: m1.small}\n      networks: {east-net: private}\n",
    )
    m = s.protection.mappings["east"]  # type: ignore[attr-defined]
    assert m.flavors == {"m1.east": "m1.small"} and m.networks == {"east-net": "private"}
    assert m.images == {} and m.volume_types == {} and m.projects == {}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            "    east:\n      flavours: {a: b}\n",
            "protection.mappings.east.flavours",
            "unknown setting",
        ),
        ("    east:\n      networks: [private]\n", "protection.mappings.east.networks", "dict"),
        (
            "    east:\n      images: {cirros: 3}\n",
            "protection.mappings.east.images.cirros",
            "string",
        ),
    ],
)
def test_a_malformed_mapping_is_refused_naming_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    msg = str(info.value)
    assert f": {key}: " in msg and problem in msg, msg
