"""Flavors, key pairs, server groups, quota sets and limits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..http import ApiError, Version, body_key, json_response, paginate, read_json
from . import views
from .api import PREFIX, nova, resource
from .records import Flavor, KeyPair, ServerGroup
from .state import DEFAULT_QUOTAS

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

_KEYPAIR_NAME = re.compile(r"^[a-zA-Z0-9 _.@-]+$")
_GROUP_POLICIES_215 = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def ssh_fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key: MD5 of the key blob, colon-separated."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint") from exc
    digest = hashlib.md5(blob).hexdigest()  # the fingerprint format, not security
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def generate_ssh_key() -> tuple[str, str]:
    """A fresh (private PEM, public OpenSSH) key pair, for requests below 2.92."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + " Generated-by-Nova"


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on", "t", "y")


def routes(site: Site) -> list[BaseRoute]:
    state = site.compute

    # -- flavors ----------------------------------------------------------------------
    def _flavors(request: Request, ctx: Ctx) -> list[Flavor]:
        qp = request.query_params
        items = sorted(state.flavors.values(), key=lambda f: (len(f.id), f.id))
        # Nova: admins filter with is_public (absent = public only, "None" = all);
        # everyone else sees the public flavors.
        raw = qp.get("is_public") if ctx.is_admin else None
        if raw is None:
            items = [f for f in items if f.is_public]
        elif raw.lower() != "none":
            want = _truthy(raw)
            items = [f for f in items if f.is_public == want]
        for key, attr in (("minRam", "ram_mb"), ("minDisk", "disk_gb")):
            if qp.get(key) is not None:
                try:
                    low = int(qp[key])
                except ValueError as exc:
                    raise ApiError(400, f"Invalid {key} filter [{qp[key]}]") from exc
                items = [f for f in items if getattr(f, attr) >= low]
        return items

    @nova(site)
    async def flavors(request: Request, ctx: Ctx, mv: Version) -> Response:
        if request.method == "POST":
            return await _create_flavor(request, ctx, mv)
        page, nxt = paginate(_flavors(request, ctx), request, links_key="flavors")
        body: dict[str, Any] = {"flavors": [views.flavor_brief(f, site.url, mv) for f in page]}
        if nxt:
            body["flavors_links"] = nxt
        return json_response(body)

    @nova(site)
    async def flavors_detail(request: Request, ctx: Ctx, mv: Version) -> Response:
        page, nxt = paginate(_flavors(request, ctx), request, links_key="flavors")
        body: dict[str, Any] = {"flavors": [views.flavor_detail(f, site.url, mv) for f in page]}
        if nxt:
            body["flavors_links"] = nxt
        return json_response(body)

    async def _create_flavor(request: Request, ctx: Ctx, mv: Version) -> Response:
        if not ctx.is_admin:
            raise ApiError(
                403, "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
            )
        body = body_key(await read_json(request), "flavor")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, f"Invalid input for field/attribute name. Value: {name}.")
        nums: dict[str, int] = {}
        for key, low in (
            ("ram", 1),
            ("vcpus", 1),
            ("disk", 0),
            ("OS-FLV-EXT-DATA:ephemeral", 0),
            ("swap", 0),
        ):
            value = body.get(key, 0 if key not in ("ram", "vcpus", "disk") else None)
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if value == "" and key == "swap":
                value = 0
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ApiError(400, f"Invalid input for field/attribute {key}. Value: {value}.")
            nums[key] = value
        fid = body.get("id")
        fid = site.new_id() if fid in (None, "", "auto") else str(fid)
        if fid in state.flavors:
            raise ApiError(409, f"Flavor with ID {fid} already exists.")
        if any(f.name == name for f in state.flavors.values()):
            raise ApiError(409, f"Flavor with name {name} already exists.")
        f = Flavor(
            id=fid,
            name=name,
            vcpus=nums["vcpus"],
            ram_mb=nums["ram"],
            disk_gb=nums["disk"],
            ephemeral_gb=nums["OS-FLV-EXT-DATA:ephemeral"],
            swap_mb=nums["swap"],
            is_public=bool(body.get("os-flavor-access:is_public", True)),
            description=body.get("description") if mv >= (2, 55) else None,
        )
        state.flavors[fid] = f
        return json_response({"flavor": views.flavor_detail(f, site.url, mv)})

    @nova(site)
    async def flavor(request: Request, ctx: Ctx, mv: Version) -> Response:
        f = state.get_flavor(request.path_params["id"])
        if request.method == "DELETE":
            if not ctx.is_admin:
                raise ApiError(
                    403,
                    "Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed.",
                )
            del state.flavors[f.id]
            return Response(status_code=202)
        return json_response({"flavor": views.flavor_detail(f, site.url, mv)})

    @nova(site)
    async def extra_specs(request: Request, ctx: Ctx, mv: Version) -> Response:
        f = state.get_flavor(request.path_params["id"])
        if request.method == "POST":
            if not ctx.is_admin:
                raise ApiError(
                    403,
                    "Policy doesn't allow os_compute_api:os-flavor-extra-specs:create to be performed.",
                )
            specs = body_key(await read_json(request), "extra_specs")
            f.extra_specs.update({str(k): str(v) for k, v in specs.items()})
        return json_response({"extra_specs": dict(f.extra_specs)})

    @nova(site)
    async def extra_spec(request: Request, ctx: Ctx, mv: Version) -> Response:
        f = state.get_flavor(request.path_params["id"])
        key = request.path_params["key"]
        if request.method == "GET":
            if key not in f.extra_specs:
                raise ApiError(404, f"Flavor {f.id} has no extra specs with key {key}.")
            return json_response({key: f.extra_specs[key]})
        if not ctx.is_admin:
            raise ApiError(
                403, "Policy doesn't allow os_compute_api:os-flavor-extra-specs to be performed."
            )
        if request.method == "DELETE":
            if f.extra_specs.pop(key, None) is None:
                raise ApiError(404, f"Flavor {f.id} has no extra specs with key {key}.")
            return Response(status_code=202)
        body = await read_json(request)
        if not isinstance(body, dict) or list(body) != [key]:
            raise ApiError(400, "Request body and URI mismatch")
        f.extra_specs[key] = str(body[key])
        return json_response({key: f.extra_specs[key]})

    # -- key pairs ------------------------------------------------------------------------
    def _user(request: Request, ctx: Ctx, mv: Version) -> str:
        asked = request.query_params.get("user_id")
        if asked and mv >= (2, 10):
            if not ctx.is_admin and asked != ctx.user_id:
                raise ApiError(
                    403, "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."
                )
            return asked
        return ctx.user_id

    def _keypair(user_id: str, name: str) -> KeyPair:
        k = state.keypairs.get((user_id, name))
        if k is None:
            raise ApiError(404, f"Keypair {name} not found for user {user_id}")
        return k

    @nova(site)
    async def keypairs(request: Request, ctx: Ctx, mv: Version) -> Response:
        if request.method == "POST":
            return await _create_keypair(request, ctx, mv)
        user = _user(request, ctx, mv)
        items = sorted(
            (k for (u, _n), k in state.keypairs.items() if u == user), key=lambda k: k.name
        )
        page, nxt = paginate(items, request, ident=lambda k: k.name, links_key="keypairs")
        body: dict[str, Any] = {
            "keypairs": [{"keypair": views.keypair(k, mv, full=False)} for k in page]
        }
        if nxt and mv >= (2, 35):
            body["keypairs_links"] = nxt
        return json_response(body)

    async def _create_keypair(request: Request, ctx: Ctx, mv: Version) -> Response:
        body = body_key(await read_json(request), "keypair")
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 255:
            raise ApiError(400, f"Invalid input for field/attribute name. Value: {name}.")
        if mv < (2, 92) and not _KEYPAIR_NAME.match(name):
            raise ApiError(400, "Keypair data is invalid: Keypair name contains unsafe characters")
        ktype = body.get("type", "ssh") if mv >= (2, 2) else "ssh"
        if ktype not in ("ssh", "x509"):
            raise ApiError(400, f"Invalid input for field/attribute type. Value: {ktype}.")
        user = str(body.get("user_id") or ctx.user_id) if mv >= (2, 10) else ctx.user_id
        if user != ctx.user_id and not ctx.is_admin:
            raise ApiError(
                403, "Policy doesn't allow os_compute_api:os-keypairs:create to be performed."
            )
        limit = state.quota(ctx.project_id)["key_pairs"]
        used = sum(1 for (u, _n) in state.keypairs if u == user)
        if 0 <= limit <= used:
            raise ApiError(403, "Quota exceeded, too many key pairs.")
        if (user, name) in state.keypairs:
            raise ApiError(409, f"Key pair '{name}' already exists.")
        public = body.get("public_key")
        private = None
        if public is None:
            if mv >= (2, 92):
                raise ApiError(
                    400,
                    "Invalid input for field/attribute keypair. 'public_key' is a required property",
                )
            private, public = generate_ssh_key()
        if not isinstance(public, str):
            raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint")
        if ktype == "ssh":
            fingerprint = ssh_fingerprint(public)
        else:
            sha = hashlib.sha1(public.encode()).hexdigest()  # Nova's x509 fingerprint format
            fingerprint = ":".join(sha[i : i + 2] for i in range(0, 40, 2))
        k = KeyPair(next(state._keypair_ids), name, user, public, fingerprint, ktype, state.now())
        state.keypairs[(user, name)] = k
        doc = views.keypair(k, mv, full=False)
        doc["user_id"] = user
        if private is not None:
            doc["private_key"] = private
        return json_response({"keypair": doc}, status=201 if mv >= (2, 2) else 200)

    @nova(site)
    async def keypair(request: Request, ctx: Ctx, mv: Version) -> Response:
        user = _user(request, ctx, mv)
        k = _keypair(user, request.path_params["name"])
        if request.method == "DELETE":
            del state.keypairs[(user, k.name)]
            return Response(status_code=204 if mv >= (2, 2) else 202)
        return json_response({"keypair": views.keypair(k, mv, full=True)})

    # -- server groups ------------------------------------------------------------------------
    @nova(site)
    async def server_groups(request: Request, ctx: Ctx, mv: Version) -> Response:
        if request.method == "POST":
            return await _create_group(request, ctx, mv)
        qp = request.query_params
        everyone = ctx.is_admin and _truthy(qp.get("all_projects"))
        items = [
            g for g in state.server_groups.values() if everyone or g.project_id == ctx.project_id
        ]
        try:
            offset = int(qp.get("offset", "0"))
            limit = int(qp.get("limit", "1000"))
        except ValueError as exc:
            raise ApiError(400, "offset and limit must be integers") from exc
        items = items[offset : offset + limit]
        return json_response({"server_groups": [views.server_group(g, mv) for g in items]})

    async def _create_group(request: Request, ctx: Ctx, mv: Version) -> Response:
        body = body_key(await read_json(request), "server_group")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, f"Invalid input for field/attribute name. Value: {name}.")
        allowed = _GROUP_POLICIES_215 if mv >= (2, 15) else _GROUP_POLICIES_215[:2]
        rules: dict[str, int] = {}
        if mv >= (2, 64):
            policy = body.get("policy")
            raw_rules = body.get("rules", {})
            if not isinstance(raw_rules, dict) or set(raw_rules) - {"max_server_per_host"}:
                raise ApiError(400, f"Invalid input for field/attribute rules. Value: {raw_rules}.")
            if raw_rules and policy != "anti-affinity":
                raise ApiError(400, "Only anti-affinity policy supports rules.")
            if "max_server_per_host" in raw_rules:
                n = raw_rules["max_server_per_host"]
                if isinstance(n, str) and n.isdigit():
                    n = int(n)
                if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                    raise ApiError(
                        400, f"Invalid input for field/attribute max_server_per_host. Value: {n}."
                    )
                rules["max_server_per_host"] = n
        else:
            policies = body.get("policies")
            if not isinstance(policies, list) or len(policies) != 1:
                raise ApiError(
                    400, f"Invalid input for field/attribute policies. Value: {policies}."
                )
            policy = policies[0]
        if policy not in allowed:
            raise ApiError(
                400,
                f"Invalid input for field/attribute policy. Value: {policy}. '{policy}' is not one of {list(allowed)}",
            )
        limit = state.quota(ctx.project_id)["server_groups"]
        used = sum(1 for g in state.server_groups.values() if g.project_id == ctx.project_id)
        if 0 <= limit <= used:
            raise ApiError(403, "Quota exceeded, too many server groups.")
        g = ServerGroup(site.new_id(), name, str(policy), rules, ctx.project_id, ctx.user_id)
        state.server_groups[g.id] = g
        return json_response({"server_group": views.server_group(g, mv)})

    @nova(site)
    async def server_group(request: Request, ctx: Ctx, mv: Version) -> Response:
        g = state.get_group(request.path_params["id"], ctx)
        if request.method == "DELETE":
            del state.server_groups[g.id]
            for sid in g.members:
                s = state.servers.get(sid)
                if s is not None:
                    s.group_id = None
            return Response(status_code=204)
        return json_response({"server_group": views.server_group(g, mv)})

    # -- quotas and limits ----------------------------------------------------------------------
    def _visible_keys(mv: Version) -> list[str]:
        keys = [
            "instances",
            "cores",
            "ram",
            "key_pairs",
            "metadata_items",
            "server_groups",
            "server_group_members",
        ]
        if mv < (2, 57):
            keys += ["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"]
        return keys

    def _legacy(mv: Version) -> dict[str, int]:
        # Proxies to Neutron that Nova showed below 2.36.
        if mv >= (2, 36):
            return {}
        return {
            "floating_ips": 10,
            "fixed_ips": -1,
            "security_groups": 10,
            "security_group_rules": 20,
        }

    @nova(site)
    async def quota_set(request: Request, ctx: Ctx, mv: Version) -> Response:
        project = request.path_params["project"]
        if project != ctx.project_id and not ctx.is_admin:
            raise ApiError(
                403, "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed."
            )
        if request.method in ("PUT", "DELETE") and not ctx.is_admin:
            raise ApiError(
                403,
                f"Policy doesn't allow os_compute_api:os-quota-sets:{'update' if request.method == 'PUT' else 'delete'} to be performed.",
            )
        if request.method == "DELETE":
            state.quotas.pop(project, None)
            return Response(status_code=202)
        if request.method == "PUT":
            body = body_key(await read_json(request), "quota_set")
            known = set(DEFAULT_QUOTAS) | set(_legacy((2, 1)))
            bad = sorted(k for k in body if k not in known and k != "force")
            if bad:
                raise ApiError(400, f"Bad key(s) {', '.join(bad)} in quota_set")
            updates: dict[str, int] = {}
            for k, v in body.items():
                if k == "force" or k in _legacy((2, 1)):
                    continue
                if isinstance(v, str) and v.lstrip("-").isdigit():
                    v = int(v)
                if not isinstance(v, int) or isinstance(v, bool) or v < -1:
                    raise ApiError(400, f"Invalid input for field/attribute {k}. Value: {v}.")
                updates[k] = v
            state.quotas.setdefault(project, {}).update(updates)
            quota = state.quota(project)
            return json_response(
                {"quota_set": {**{k: quota[k] for k in _visible_keys(mv)}, **_legacy(mv)}}
            )
        quota = state.quota(project)
        doc: dict[str, Any] = {"id": project}
        if request.url.path.endswith("/detail"):
            used = state.quota_in_use(project, request.query_params.get("user_id") or ctx.user_id)
            for k in _visible_keys(mv):
                doc[k] = {"limit": quota[k], "in_use": used.get(k, 0), "reserved": 0}
            for k, v in _legacy(mv).items():
                doc[k] = {"limit": v, "in_use": 0, "reserved": 0}
        else:
            doc.update({k: quota[k] for k in _visible_keys(mv)})
            doc.update(_legacy(mv))
        return json_response({"quota_set": doc})

    @nova(site)
    async def quota_defaults(request: Request, ctx: Ctx, mv: Version) -> Response:
        doc: dict[str, Any] = {"id": request.path_params["project"]}
        doc.update({k: DEFAULT_QUOTAS[k] for k in _visible_keys(mv)})
        doc.update(_legacy(mv))
        return json_response({"quota_set": doc})

    @nova(site)
    async def limits(request: Request, ctx: Ctx, mv: Version) -> Response:
        project = request.query_params.get("tenant_id") if ctx.is_admin else None
        project = project or ctx.project_id
        q = state.quota(project)
        used = state.quota_in_use(project, ctx.user_id)
        absolute: dict[str, int] = {
            "maxTotalInstances": q["instances"],
            "maxTotalCores": q["cores"],
            "maxTotalRAMSize": q["ram"],
            "maxServerMeta": q["metadata_items"],
            "maxTotalKeypairs": q["key_pairs"],
            "maxServerGroups": q["server_groups"],
            "maxServerGroupMembers": q["server_group_members"],
            "totalInstancesUsed": used["instances"],
            "totalCoresUsed": used["cores"],
            "totalRAMUsed": used["ram"],
            "totalServerGroupsUsed": used["server_groups"],
        }
        if mv < (2, 57):
            absolute.update(
                {
                    "maxPersonality": q["injected_files"],
                    "maxPersonalitySize": q["injected_file_content_bytes"],
                    "maxImageMeta": 128,
                }
            )
        if mv < (2, 36):
            absolute.update(
                {
                    "maxTotalFloatingIps": 10,
                    "maxSecurityGroups": 10,
                    "maxSecurityGroupRules": 20,
                    "totalFloatingIpsUsed": 0,
                    "totalSecurityGroupsUsed": 0,
                }
            )
        return json_response({"limits": {"rate": [], "absolute": absolute}})

    return [
        resource(f"{PREFIX}/flavors", GET=flavors, POST=flavors),
        resource(f"{PREFIX}/flavors/detail", GET=flavors_detail),
        resource(f"{PREFIX}/flavors/{{id}}", GET=flavor, DELETE=flavor),
        resource(f"{PREFIX}/flavors/{{id}}/os-extra_specs", GET=extra_specs, POST=extra_specs),
        resource(
            f"{PREFIX}/flavors/{{id}}/os-extra_specs/{{key}}",
            GET=extra_spec,
            PUT=extra_spec,
            DELETE=extra_spec,
        ),
        resource(f"{PREFIX}/os-keypairs", GET=keypairs, POST=keypairs),
        resource(f"{PREFIX}/os-keypairs/{{name}}", GET=keypair, DELETE=keypair),
        resource(f"{PREFIX}/os-server-groups", GET=server_groups, POST=server_groups),
        resource(f"{PREFIX}/os-server-groups/{{id}}", GET=server_group, DELETE=server_group),
        resource(f"{PREFIX}/os-quota-sets/{{project}}/defaults", GET=quota_defaults),
        resource(f"{PREFIX}/os-quota-sets/{{project}}/detail", GET=quota_set),
        resource(
            f"{PREFIX}/os-quota-sets/{{project}}", GET=quota_set, PUT=quota_set, DELETE=quota_set
        ),
        resource(f"{PREFIX}/limits", GET=limits),
    ]
