"""Compute-host HA: monitors, fencers, evacuators, notifiers, segments, the recovery workflow.

See ``docs/host-ha.md``.  A host failure flows: signals from the configured
monitors agree → re-check → confirmed (unless a guard holds: mass-failure
breaker, per-segment limit, control plane unreachable) → a durable recovery
workflow fences the host (power-off confirmed by reading it back), forces
its compute service down, evacuates its instances by priority to hosts with
room, tracks each to its earlier power state, and notifies.
"""
