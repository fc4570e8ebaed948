"""Clouds: the Cloud port (what services ask of a site) and its openstacksdk adapter."""

from __future__ import annotations

from .model import TAG_RUN, TAG_STEP, Tag
from .openstack import OpenStackCloud, clouds_for
from .port import CAPABILITIES, Cloud, ResourceNotFound

__all__ = [
    "CAPABILITIES",
    "TAG_RUN",
    "TAG_STEP",
    "Cloud",
    "OpenStackCloud",
    "ResourceNotFound",
    "Tag",
    "clouds_for",
]
