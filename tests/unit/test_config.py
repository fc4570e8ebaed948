"""Loading the controller's config file: defaults, secrets by reference, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from liferaft.config import Settings, load_config
from liferaft.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "liferaft.yaml"
    p.write_text(text)
    return p


def test_smallest_file_gets_sane_defaults(tmp_path: Path) -> None:
    s = load_config(write(tmp_path, "site: {name: east}\n"))
    assert s.site.cloud_name == "east"
    assert s.api.host == "127.0.0.1"
    assert s.clock.source == "real"
    assert s.drlogic.drlogic_interval == 30
    assert s.drlogic.drlogic_clean_up_interval == 3600
    assert s.drlogic.max_protection_interval == 1800
    assert s.drlogic.logic_driver == "per-group-interval"
    assert s.store_url == f"sqlite:///{s.state_dir / 'liferaft.db'}"
    assert s.peers == []


def test_full_file_and_relative_paths(tmp_path: Path) -> None:
    s = load_config(
        write(
            tmp_path,
            """
site: {name: east, cloud: east-admin, clouds_yaml: clouds.yaml}
peers: [{name: west, clouds_yaml: /etc/openstack/clouds.yaml}]
state_dir: state
api: {host: 0.0.0.0, port: 9999}
logging: {level: debug, format: json}
clock: {source: simulator, control_url: "http://127.0.0.1:1"}
leadership: {role: east, lease_seconds: 5}
""",
        )
    )
    assert s.site.cloud_name == "east-admin"
    assert s.site.clouds_yaml == tmp_path / "clouds.yaml"
    assert s.peers[0].clouds_yaml == Path("/etc/openstack/clouds.yaml")
    assert s.state_dir == tmp_path / "state"
    assert s.api.port == 9999
    assert s.logging.format == "json"
    assert s.leadership.lease_seconds == 5
    assert [x.name for x in s.all_sites()] == ["east", "west"]


def test_secrets_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LR_TEST_STORE", "postgresql+psycopg://u:p@db/liferaft")
    (tmp_path / "cloud-name").write_text("east\n")
    s = load_config(
        write(
            tmp_path,
            'site: {name: east, cloud: {"$file": cloud-name}}\nstore: {url: {"$env": LR_TEST_STORE}}\n',
        )
    )
    assert s.store_url == "postgresql+psycopg://u:p@db/liferaft"
    assert s.site.cloud == "east"


@pytest.mark.parametrize(
    "text, key, problem",
    [
        (
            "site: {name: east}\napi: {prot: 1}\n",
            "api.prot",
            "unknown setting (known here: host, port",
        ),
        ("site: {name: east}\nbogus: 1\n", "bogus", "unknown setting"),
        ("site: {name: east}\napi: {port: many}\n", "api.port", "valid integer"),
        ("site: {name: east}\napi: {port: 70000}\n", "api.port", "less than or equal to 65535"),
        (
            "site: {name: east}\ndrlogic: {drlogic_interval: 0}\n",
            "drlogic.drlogic_interval",
            "greater than 0",
        ),
        ("site: {name: east}\nlogging: {format: xml}\n", "logging.format", "'json' or 'kv'"),
        ("api: {port: 1}\n", "site", "required setting is missing"),
        (
            "site: {name: east}\npeers: [{name: west}, {name: 'bad name'}]\n",
            "peers[1].name",
            "pattern",
        ),
        ("site: {name: east}\nclock: {source: simulator}\n", "clock", "needs control_url"),
        (
            'site: {name: east}\nstore: {url: {"$env": LR_TEST_SURELY_UNSET}}\n',
            "store.url",
            "environment variable LR_TEST_SURELY_UNSET is not set",
        ),
        (
            'site: {name: east}\nstore: {url: {"$file": /nonexistent/secret}}\n',
            "store.url",
            "cannot read secret file /nonexistent/secret",
        ),
        (
            'site: {name: east}\nstore: {url: {"$env": A, "$file": b}}\n',
            "store.url",
            "exactly one key",
        ),
    ],
)
def test_errors_name_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert problem in msg
    assert "\n" not in msg


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 3, column 7"):
        load_config(write(tmp_path, "site: {name: east}\napi: {port: 1\n  host: x]\n"))
    with pytest.raises(ConfigError, match=r"must hold a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_duplicate_site_names_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'east' is used twice"):
        load_config(write(tmp_path, "site: {name: east}\npeers: [{name: east}]\n"))


def test_settings_can_be_built_in_code() -> None:
    s = Settings.model_validate({"site": {"name": "east"}, "api": {"port": 0}})
    assert s.api.port == 0
