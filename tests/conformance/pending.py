"""Behaviours whose simulator side is not served yet.

``test_sim.py`` still runs them (their records are written, so progress is
visible) but marks them xfail, and ``compare.py`` reports them as PENDING
instead of comparing.  Remove an entry as soon as the simulator serves it:
the run prints ``now passes`` for pending behaviours that already work.
"""

from __future__ import annotations

_COMPUTE = (
    "the simulator's image API (sim/image/api.py) is not served yet, so no image "
    "can be found to boot from (its compute API landed in 66d5a1a)"
)

SIM_PENDING: dict[str, str] = {
    "boot_server": _COMPUTE,
    "stop_start_server": _COMPUTE,
    "force_down_evacuate": _COMPUTE,
    "server_volume_attach_detach": _COMPUTE,
    "compute_errors": _COMPUTE,
}
