"""Behaviours whose simulator side is not served yet.

``test_sim.py`` still runs them (their records are written, so progress is
visible) but marks them xfail, and ``compare.py`` reports them as PENDING
instead of comparing.  Remove an entry as soon as the simulator serves it:
the run prints ``now passes`` for pending behaviours that already work.
"""

from __future__ import annotations

SIM_PENDING: dict[str, str] = {}
