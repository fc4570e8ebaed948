"""Request-body checks for the Neutron facade, with Neutron's wording.

Neutron converts a few loosely typed inputs (``"true"`` for a boolean,
``"1500"`` for an integer) and refuses unknown attributes with
``Unrecognized attribute(s)``; these helpers do the same.
"""

from __future__ import annotations

from typing import Any

from ..http import ApiError
from ..identity import Ctx
from . import errors


def resource(body: Any, key: str, allowed: frozenset[str]) -> dict[str, Any]:
    """``body[key]`` as a dict, with every attribute in ``allowed``."""
    if not isinstance(body, dict) or key not in body:
        raise errors.bad_request(f"Resource body required: '{key}' not found in request body.")
    value = body[key]
    if not isinstance(value, dict):
        raise errors.bad_request(f"Invalid input for {key}. Reason: a JSON object is expected.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise errors.bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    return value


def invalid(name: str, value: Any, reason: str) -> ApiError:
    return errors.bad_request(f"Invalid input for {name}. Reason: '{value}' {reason}.")


def to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int):
        return bool(value)
    raise invalid(name, value, "cannot be converted to boolean")


def to_str(name: str, value: Any, max_len: int = 255) -> str:
    if not isinstance(value, str):
        raise invalid(name, value, "is not a valid string")
    if len(value) > max_len:
        raise invalid(name, value, f"exceeds maximum length of {max_len}")
    return value


def to_opt_str(name: str, value: Any) -> str | None:
    return None if value is None else to_str(name, value)


def to_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise invalid(name, value, "is not an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(name, value, "is not an integer") from None
    if low is not None and number < low:
        raise invalid(name, value, f"is too small - must be at least '{low}'")
    if high is not None and number > high:
        raise invalid(name, value, f"is too large - must be no larger than '{high}'")
    return number


def to_str_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(name, value, "is not a list of strings")
    return list(value)


def to_dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(name, value, "is not a dictionary")
    return dict(value)


def fixed_ips(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("fixed_ips", value, "is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"}:
            raise invalid("fixed_ips", item, "is not a valid fixed IP (subnet_id, ip_address)")
        out.append(dict(item))
    return out


def address_pairs(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid("allowed_address_pairs", value, "is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or "ip_address" not in item:
            raise errors.bad_request(
                "Allowed address pairs must be a list of dictionaries with an ip_address.",
                "AllowedAddressPairsMissingIP",
            )
        pair = {"ip_address": to_str("allowed_address_pairs", item["ip_address"])}
        if item.get("mac_address") is not None:
            pair["mac_address"] = to_str("allowed_address_pairs", item["mac_address"])
        out.append(pair)
    return out


def forbid(attribute: str, action: str) -> ApiError:
    return ApiError(
        403,
        f"({action}:{attribute}) is disallowed by policy",
        neutron_type="PolicyNotAuthorized",
    )


def owner_project(ctx: Ctx, fields: dict[str, Any]) -> str:
    """The project a new resource belongs to (another one only for admins)."""
    project = fields.get("project_id") or fields.get("tenant_id") or ctx.project_id
    if not isinstance(project, str):
        raise invalid("project_id", project, "is not a valid string")
    if project != ctx.project_id and not ctx.is_admin:
        raise errors.bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project "
            "in request requires admin privileges"
        )
    return project
