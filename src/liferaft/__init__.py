"""Liferaft keeps OpenStack workloads alive when a compute host or a whole datacenter fails."""

__version__ = "0.1.0"
