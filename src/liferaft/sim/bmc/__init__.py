"""Baseboard management controllers of the simulated hosts.

Each host has a BMC on loopback that real clients fence with:

* Redfish (:mod:`.redfish`): one Starlette listener per site, the host's
  system at ``/redfish/v1/Systems/{host}``, HTTP Basic or session auth with
  the BMC's own credentials (``sushy`` works unchanged);
* IPMI over LAN (:mod:`.ipmi`): RMCP+/IPMI 2.0 on one UDP port per host,
  built on pyghmi's BMC server (``ipmitool -I lanplus`` and pyghmi's
  ``Command`` work unchanged).

Both act through :class:`.registry.BmcRegistry`, which owns the credentials,
the power actions (on the simulated clock) and the write-log records
(``power_read``, ``bmc_action``; the power change itself is ``power``).
"""
