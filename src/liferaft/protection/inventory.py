"""What a group's servers need besides their disks and ports: key pairs, security groups, server groups.

:func:`describe_access` reads them at the protected site for the
checkpoint's ``describe`` step, so the manifest carries everything needed
to rebuild the group (the recovery's :mod:`liferaft.recovery.groundwork`
recreates them):

* ``key_pairs``: each key pair a server was booted with, by name, with its
  *public* key (``public_key`` is ``None`` when the controller's user cannot
  read it: key pairs belong to users);
* ``security_groups``: each security group of a port, with its rules
  (``remote_group_id`` names another group of the list, or is kept as is);
* ``server_groups``: each server group with a server of the group as a
  member (its policy, and which of our servers are in it); each server
  also gets its ``server_group_id``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from liferaft.clouds.port import Cloud, ResourceNotFound

#: Manifest keys this module fills (older manifests lack them: nothing to recreate).
KEYS = ("key_pairs", "security_groups", "server_groups")


async def describe_access(cloud: Cloud, servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The key pairs, security groups and server groups of ``servers`` (manifest entries)."""
    key_pairs = []
    for name in sorted({s["key_name"] for s in servers if s.get("key_name")}):
        kp = await cloud.find_keypair(name)
        key_pairs.append(
            {
                "name": name,
                "public_key": kp.public_key if kp else None,
                "type": kp.type if kp else "ssh",
            }
        )
    sg_ids = sorted({g for s in servers for p in s["ports"] for g in p["security_group_ids"]})
    security_groups = []
    for gid in sg_ids:
        try:
            g = await cloud.get_security_group(gid)
        except ResourceNotFound:
            continue
        security_groups.append(
            {
                "id": g.id,
                "name": g.name,
                "description": g.description,
                "rules": [
                    {k: v for k, v in asdict(r).items() if k != "id"}
                    for r in sorted(g.rules, key=lambda r: str(r.key()))
                ],
            }
        )
    ours = {s["id"] for s in servers}
    server_groups = []
    for sg in await cloud.list_server_groups():
        members = sorted(m for m in sg.members if m in ours)
        if not members:
            continue
        server_groups.append(
            {"id": sg.id, "name": sg.name, "policy": sg.policy, "members": members}
        )
        for s in servers:
            if s["id"] in members:
                s["server_group_id"] = sg.id
    return {
        "key_pairs": key_pairs,
        "security_groups": security_groups,
        "server_groups": server_groups,
    }
