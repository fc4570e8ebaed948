"""Checkpoint manifests: everything needed to rebuild a group, signed, stored next to the data.

A manifest is written to the recovery site's object store when a
checkpoint's backups have landed there, so recovery needs nothing from the
protected site (neither its API nor its controller's database).  Stored
form (JSON)::

    {"format": "liferaft-manifest/1", "key_id": "...", "signature": "<hex>",
     "manifest": {...}}

The signature is HMAC-SHA256 over the canonical JSON of ``manifest``
(sorted keys, no spaces), keyed with the ``protection.manifest_key``
secret.  A tampered or truncated object fails :func:`verify` and is refused.

Object names: ``<prefix>/<group id>/<capture time, zero-padded>-<checkpoint id>.json``
in the configured container, so a listing of one group's prefix is in
capture order and the newest checkpoint is the last name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from liferaft.errors import GiveUp

FORMAT = "liferaft-manifest/1"
PREFIX = "manifests"


class ManifestRefused(GiveUp):
    """A manifest that is not what Liferaft signed (tampered, truncated, wrong key)."""


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def key_id(key: bytes) -> str:
    """A public fingerprint of the signing key (which key signed; not the key)."""
    return hashlib.sha256(b"liferaft-manifest-key:" + key).hexdigest()[:16]


def sign(manifest: dict[str, Any], key: bytes) -> bytes:
    """The stored bytes of a signed manifest."""
    if not key:
        raise GiveUp("no manifest signing key is configured (protection.manifest_key)")
    sig = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    doc = {"format": FORMAT, "key_id": key_id(key), "signature": sig, "manifest": manifest}
    return json.dumps(doc, sort_keys=True, indent=1).encode()


def verify(data: bytes, key: bytes, *, where: str = "manifest") -> dict[str, Any]:
    """The manifest in ``data`` if its signature holds; :class:`ManifestRefused` if not."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestRefused(f"{where}: not a whole JSON document (truncated?): {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestRefused(f"{where}: not a {FORMAT} document")
    manifest, sig = doc.get("manifest"), doc.get("signature")
    if not isinstance(manifest, dict) or not isinstance(sig, str):
        raise ManifestRefused(f"{where}: no manifest or signature")
    want = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        why = (
            "signed with another key"
            if doc.get("key_id") != key_id(key)
            else "its content does not match its signature (tampered)"
        )
        raise ManifestRefused(f"{where}: refused: {why}")
    return manifest


def object_name(group_id: str, captured_at: float, checkpoint_id: str) -> str:
    return f"{PREFIX}/{group_id}/{captured_at:017.3f}-{checkpoint_id}.json"


def group_prefix(group_id: str | None = None) -> str:
    return f"{PREFIX}/{group_id}/" if group_id else f"{PREFIX}/"


def group_of(name: str) -> str | None:
    parts = name.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None
