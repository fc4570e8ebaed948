"""IPMI over LAN (RMCP+, IPMI 2.0) for every simulated host, on one UDP port each.

Built on pyghmi's BMC server (``pyghmi.ipmi.bmc.Bmc``): it does the RMCP+
handshake (RAKP with HMAC-SHA1, AES-CBC-128 confidentiality: cipher suite
3) and hands each authenticated command to us.  ``ipmitool -I lanplus -H
127.0.0.1 -p PORT -U user -P pass chassis power status|on|off|cycle|reset|soft``
and pyghmi's ``Command`` work against it.

pyghmi's session machinery is threaded and global: its own I/O thread
receives datagrams and one thread of ours (started by :meth:`IpmiService.start`)
runs its event loop.  Every command that reads or changes the world is handed
to the simulator's asyncio loop (:meth:`IpmiService.call`), so the world
stays single-threaded.

A client that proposes another cipher suite (pyghmi tries suite 17, SHA-256,
first) is told "no matching cipher suite" in the open-session response, as a
suite-3-only BMC does, and retries with suite 3.  While the host's site is
down the BMC answers nothing (clients time out); under the ``bmc-garbage``
host fault every command is answered with completion code 0xFF and junk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.serversession as serversession
import pyghmi.ipmi.private.session as ipmisession

from .registry import BmcInfo, BmcRegistry, PowerRefused

log = logging.getLogger(__name__)

T = TypeVar("T")

#: RMCP+ status code "no cipher suite match with proposed security algorithms".
_NO_CIPHER_MATCH = 0x11
#: IPMI completion codes.
_CC_NOT_IN_PRESENT_STATE = 0xD5
_CC_UNSPECIFIED = 0xFF
#: What pyghmi's server implements: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
_SUITE_3 = (1, 1, 1)


class _Session(serversession.ServerSession):
    """A server session that refuses cipher suites it cannot speak and falls silent with its site."""

    bmc: _HostBmc

    def create_open_session_response(self, request: bytearray) -> bytearray:
        if len(request) >= 29:
            proposed = (request[12] & 0x3F, request[20] & 0x3F, request[28] & 0x3F)
            if proposed != _SUITE_3:
                return bytearray([request[0], _NO_CIPHER_MATCH, 0, 0]) + request[4:8]
        response: bytearray = super().create_open_session_response(request)
        return response

    def process_pktqueue(self) -> None:
        if not self.bmc.answering():
            self.pktqueue.clear()
            return
        super().process_pktqueue()


class _HostBmc(pyghmi_bmc.Bmc):
    """One host's BMC on its own UDP port."""

    def __init__(self, service: IpmiService, info: BmcInfo, address: str) -> None:
        super().__init__(
            {info.username: info.password},
            port=0,
            bmcuuid=uuid.UUID(info.uuid),
            address=address,
        )
        # pyghmi routes session datagrams by the socket's port: use the bound one.
        self.port: int = self.serversocket.getsockname()[1]
        self.service = service
        self.info = info

    def answering(self) -> bool:
        return self.service.call(lambda: self.service.registry.answers(self.info))

    # -- datagrams without a session ---------------------------------------------------
    def sessionless_data(self, data: Any, sockaddr: Any) -> None:
        if not self.answering():
            return
        raw = bytearray(data)
        if len(raw) >= 22 and raw[0] == 6 and raw[2:4] == b"\xff\x07" and raw[4:6] == b"\x06\x10":
            # An RMCP+ open-session request: our session class handles the handshake.
            _Session(
                self.authdata, self.kg, sockaddr, self.serversocket, raw[16:], self.uuid, bmc=self
            )
            return
        super().sessionless_data(data, sockaddr)

    # -- authenticated commands ------------------------------------------------------------
    def handle_raw_request(self, request: dict[str, Any], session: Any) -> None:
        if not self.answering():
            return
        if self.service.call(lambda: self.service.registry.garbage(self.info)):
            session.send_ipmi_response(code=_CC_UNSPECIFIED, data=list(os.urandom(5)))
            return
        super().handle_raw_request(request, session)

    def get_power_state(self) -> str:
        state = self.service.call(lambda: self.service.registry.read_power(self.info, "ipmi"))
        # The chassis reports what the power rail does right now.
        return "on" if state in ("On", "PoweringOff") else "off"

    def _reset(self, reset_type: str) -> int:
        def act() -> int:
            try:
                self.service.registry.reset(self.info, reset_type, "ipmi")
            except PowerRefused as exc:
                log.info(
                    "IPMI %s on %s/%s refused: %s", reset_type, self.info.site, self.info.host, exc
                )
                return _CC_NOT_IN_PRESENT_STATE
            return 0

        return self.service.call(act)

    def power_off(self) -> int:
        return self._reset("ForceOff")

    def power_on(self) -> int:
        return self._reset("On")

    def power_cycle(self) -> int:
        return self._reset("PowerCycle")

    def power_reset(self) -> int:
        return self._reset("ForceRestart")

    def power_shutdown(self) -> int:
        return self._reset("GracefulShutdown")

    def pulse_diag(self) -> int:
        return self._reset("Nmi")

    def cold_reset(self) -> int:
        return 0  # the BMC restarts; nothing the host notices

    def get_system_guid(self) -> uuid.UUID:
        guid: uuid.UUID = self.uuid
        return guid


class IpmiService:
    """Every host's IPMI BMC; binds the UDP ports at once, serves after :meth:`start`."""

    def __init__(self, registry: BmcRegistry, address: str = "127.0.0.1") -> None:
        self.registry = registry
        self.bmcs: list[_HostBmc] = []
        for info in registry.bmcs.values():
            bmc = _HostBmc(self, info, address)
            info.ipmi_port = bmc.port
            self.bmcs.append(bmc)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator's event loop and return its result (from our thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the IPMI service is not running")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout=10)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="liferaft-ipmi", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ipmisession.Session.wait_for_rsp(0.5)
            except Exception:  # one bad datagram must not stop every BMC
                log.exception("IPMI server loop")

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join, 5)
