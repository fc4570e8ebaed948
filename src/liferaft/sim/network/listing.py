"""Neutron's list semantics: attribute filters, sorting, ``fields`` and pages.

Any attribute of a resource is a filter (``?name=x``; repeating a
parameter means "any of"), ``fixed_ips=ip_address=...`` matches ports by
address, ``tags``/``tags-any``/``not-tags`` match tags, and ``limit`` with
``marker`` pages through the result with a ``<resource>_links`` ``next``
link.  Filters on attributes a resource does not have are ignored, as
Neutron does without its filter-validation extension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from . import errors

#: Query parameters that steer the listing rather than filter it.
CONTROL = frozenset(
    {"limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse", "verbose"}
)


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any(w.lower() in (("true", "1") if value else ("false", "0")) for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return str(value) in wanted


def _fixed_ip_filter(docs: list[dict[str, Any]], values: list[str]) -> list[dict[str, Any]]:
    want: dict[str, list[str]] = {}
    for v in values:
        key, _, val = v.partition("=")
        want.setdefault(key, []).append(val)

    def ok(fip: dict[str, Any]) -> bool:
        for key, vals in want.items():
            if key == "ip_address_substr":
                if not any(s in fip.get("ip_address", "") for s in vals):
                    return False
            elif str(fip.get(key)) not in vals:
                return False
        return True

    return [d for d in docs if any(ok(f) for f in d.get("fixed_ips", []))]


def filter_docs(docs: list[dict[str, Any]], params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        if key not in CONTROL:
            grouped.setdefault(key, []).append(value)
    out = docs
    for key, values in grouped.items():
        if key == "fixed_ips":
            out = _fixed_ip_filter(out, values)
        elif key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            tags = {t for v in values for t in v.split(",") if t}
            if key == "tags":
                out = [d for d in out if tags <= set(d.get("tags", []))]
            elif key == "tags-any":
                out = [d for d in out if tags & set(d.get("tags", []))]
            elif key == "not-tags":
                out = [d for d in out if not tags <= set(d.get("tags", []))]
            else:
                out = [d for d in out if not tags & set(d.get("tags", []))]
        else:
            out = [d for d in out if key not in d or _matches(d[key], values)]
    return out


def sort_docs(docs: list[dict[str, Any]], params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    keys = [v for k, v in params if k == "sort_key"]
    dirs = [v for k, v in params if k == "sort_dir"]
    if not keys:
        return docs
    if dirs and len(dirs) != len(keys):
        raise errors.bad_request("The number of sort_keys and sort_dirs must be same")
    out = list(docs)
    for i in reversed(range(len(keys))):
        key = keys[i]
        direction = dirs[i] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise errors.bad_request(
                f"{direction} is invalid attribute for sort_key", "HTTPBadRequest"
            )
        if docs and key not in docs[0]:
            raise errors.bad_request(f"{key} is invalid attribute for sort_key")
        out.sort(key=_sort_key(key), reverse=direction == "desc")
    return out


def _sort_key(key: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    def get(doc: dict[str, Any]) -> tuple[bool, str]:
        return (doc.get(key) is None, str(doc.get(key)))

    return get


def page(
    docs: list[dict[str, Any]], params: list[tuple[str, str]], base_url: str, key: str
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Apply ``marker`` and ``limit``; a full page gets a ``next`` link."""
    qp = dict(params)
    start = 0
    marker = qp.get("marker")
    if marker:
        for i, d in enumerate(docs):
            if d.get("id") == marker:
                start = i + 1
                break
        else:
            # Neutron loads the marker object first, so an unknown one is a 404.
            raise errors.not_found(key, marker)
    limit_text = qp.get("limit")
    if limit_text is None:
        return docs[start:], []
    try:
        limit = int(limit_text)
    except ValueError:
        raise errors.bad_request(
            f"Limit must be an integer 0 or greater and not '{limit_text}'"
        ) from None
    if limit < 0:
        raise errors.bad_request(f"Limit must be an integer 0 or greater and not '{limit_text}'")
    if limit == 0:
        return docs[start:], []
    chunk = docs[start : start + limit]
    links = []
    if len(chunk) == limit and start + limit < len(docs):
        nxt = [(k, v) for k, v in params if k not in ("marker",)] + [("marker", chunk[-1]["id"])]
        links.append({"rel": "next", "href": f"{base_url}?{urlencode(nxt)}"})
    if start > 0 and chunk:
        prev = [(k, v) for k, v in params if k not in ("marker",)] + [
            ("marker", chunk[0]["id"]),
            ("page_reverse", "True"),
        ]
        links.append({"rel": "previous", "href": f"{base_url}?{urlencode(prev)}"})
    return chunk, links


def select_fields(
    docs: list[dict[str, Any]], params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    fields = [v for k, v in params if k == "fields"]
    if not fields:
        return docs
    return [{k: d[k] for k in fields if k in d} for d in docs]


def neutron_list(
    docs: list[dict[str, Any]],
    params: list[tuple[str, str]],
    base_url: str,
    collection: str,
    member: str,
) -> dict[str, Any]:
    """The body of ``GET /v2.0/<collection>``."""
    docs = sort_docs(filter_docs(docs, params), params)
    chunk, links = page(docs, params, base_url, member)
    body: dict[str, Any] = {collection: select_fields(chunk, params)}
    if links:
        body[f"{collection}_links"] = links
    return body
