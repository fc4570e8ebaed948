"""The host agent: a signed UDP heartbeat that a compute host sends to the controller.

:mod:`.heartbeat` defines the packet (the simulator sends the same one for
each of its hosts); :mod:`.sender` sends it on a real host (``liferaft agent``).
"""
