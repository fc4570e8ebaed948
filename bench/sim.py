"""Benchmark the embedded simulator: API latency, boot throughput, memory at scale.

Measures, against a real simulator process on loopback:

* ``latency_ms``: latency of an authenticated ``GET /servers/{id}`` at 1, 16
  and 64 connections, measured with Debian's ``wrk`` (a C load generator on
  its own core, so the generator is not the bottleneck); p50 and p99.
* ``boot_1000_s``: wall time to boot 1,000 servers at zero latency, from the
  first create request until every server is ACTIVE (creates sent over 8
  connections through the compute API, like a controller would).
* ``rss_mb_10000``: resident memory of the simulator process holding 10,000
  servers.

``--quick`` uses smaller sizes (named in the output) so it runs in under a
minute.  ``--json`` prints one JSON object; results are also written to
``bench/results/sim.json``.

Targets (from the issue): p50 under 5 ms at 16 connections, 1,000 boots in
under 20 s, under 1 GiB at 10,000 servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sim import SimProcess  # noqa: E402


def token(sim: SimProcess, site: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"name": "Default"},
                        "password": "admin-secret",
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{sim.sites[site]}/identity/v3/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


async def boot_many(base: str, tok: str, count: int, concurrency: int = 8) -> float:
    """Create ``count`` servers and wait until all are ACTIVE; returns seconds."""
    headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.96"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:
        flavor = (await c.get("/compute/v2.1/flavors", params={"name": "m1.tiny"})).json()[
            "flavors"
        ]
        flavor_id = next(f["id"] for f in flavor if f["name"] == "m1.tiny")
        images = (await c.get("/image/v2/images", params={"name": "cirros"})).json()["images"]
        image_id = images[0]["id"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        t0 = time.perf_counter()

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                body = {
                    "server": {
                        "name": f"bench-{i}",
                        "imageRef": image_id,
                        "flavorRef": flavor_id,
                        "networks": "none",
                    }
                }
                r = await c.post("/compute/v2.1/servers", json=body)
                if r.status_code != 202:
                    raise RuntimeError(f"create failed: {r.status_code} {r.text}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        # Wait until every server is ACTIVE (poll the list, as a controller would).
        while True:
            r = await c.get("/compute/v2.1/servers/detail", params={"status": "BUILD", "limit": 1})
            r.raise_for_status()
            if not r.json()["servers"]:
                break
            await asyncio.sleep(0.05)
        errors = (
            await c.get("/compute/v2.1/servers/detail", params={"status": "ERROR", "limit": 1})
        ).json()
        if errors["servers"]:
            raise RuntimeError(f"servers in ERROR: {errors['servers'][0].get('fault')}")
        return time.perf_counter() - t0


WRK_LUA = """
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = "{token}"
wrk.headers["OpenStack-API-Version"] = "compute 2.96"
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_latency(url: str, tok: str, connections: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(token=tok))
        script = f.name
    # One wrk thread: the other core is the simulator's.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    pct = {
        m[0]: _ms(m[1], m[2])
        for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return {
        "p50": pct["50"],
        "p99": pct["99"],
        "requests_per_s": float(rps.group(1)) if rps else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sim.json"))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (run scripts/system-deps)", file=sys.stderr)
        return 2

    boots = 300 if args.quick else 1000
    scale = 2000 if args.quick else 10000
    wrk_s = 3 if args.quick else 10
    result: dict[str, Any] = {
        "quick": args.quick,
        "sizes": {"boot": boots, "memory_servers": scale},
    }

    with tempfile.TemporaryDirectory(prefix="liferaft-bench-") as tmp:
        sim = SimProcess(
            Path(tmp) / "sim", stepped=False, topology={"sites": {"east": {"hosts": 64}}}
        )
        try:
            tok = token(sim, "east")
            base = sim.sites["east"]
            boot_s = asyncio.run(boot_many(base, tok, boots))
            result[f"boot_{boots}_s"] = round(boot_s, 3)
            first = httpx.get(
                f"{base}/compute/v2.1/servers", params={"limit": 1}, headers={"X-Auth-Token": tok}
            ).json()["servers"][0]["id"]
            url = f"{base}/compute/v2.1/servers/{first}"
            result["latency_ms"] = {str(c): wrk_latency(url, tok, c, wrk_s) for c in (1, 16, 64)}
            asyncio.run(boot_many(base, tok, scale - boots))
            result[f"rss_mb_{scale}"] = round(rss_mb(sim.proc.pid), 1)
        finally:
            sim.stop()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
