"""The simulator verifier keeps its probes in flight bounded (a thousand servers verified
together queued in httpx's pool, whose scan is quadratic in the waiting requests)."""

from __future__ import annotations

import asyncio
import json

from liferaft.clouds.model import Server
from liferaft.recovery.verifiers import SimulatorVerifier


def test_probes_in_flight_are_bounded_and_all_answered() -> None:
    async def main() -> tuple[int, list[bool]]:
        now = peak = 0
        release = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal now, peak
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                ids = json.loads(await reader.readexactly(length))["servers"]
                now += 1
                peak = max(peak, now)
                if peak >= SimulatorVerifier.MAX_IN_FLIGHT:
                    release.set()
                await release.wait()  # hold every probe until the gate is full
                health = {"booted": True, "application_answering": True}
                body = json.dumps({"servers": dict.fromkeys(ids, health)}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                now -= 1

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        v = SimulatorVerifier(url=f"http://127.0.0.1:{port}")
        servers = [Server(id=f"s{i}", name=f"s{i}", status="ACTIVE") for i in range(40)]
        # Checks of one site begun together share one ask: a site each makes 40 asks.
        verdicts = await asyncio.wait_for(
            asyncio.gather(*(v.check(f"site{i}", s) for i, s in enumerate(servers))), 30
        )
        server.close()
        return peak, [x.ok for x in verdicts]

    peak, oks = asyncio.run(main())
    assert peak == SimulatorVerifier.MAX_IN_FLIGHT
    assert oks == [True] * 40
