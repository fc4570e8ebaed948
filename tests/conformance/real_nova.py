"""Run the compute behaviours against Nova's own in-process functional environment.

Only for the separate conformance venv (``scripts/conformance`` makes it):
importing Nova's functional tests monkey-patches the process with eventlet,
so this always runs as its own process::

    python -m tests.conformance.real_nova --out nova.json [BEHAVIOUR ...]

Each behaviour gets a fresh environment (Nova's ``ProviderUsageBaseTestCase``:
API, conductor, scheduler, in-process Placement, SQLite, fake messaging, the
Neutron/Glance/Cinder fixtures) with two fake compute hosts, run by
``unittest`` rather than pytest because Nova's ``TestCase`` clears instance
attributes at teardown.  openstacksdk runs in the same process: the API is
only reachable through wsgi-intercept, with the no-auth headers Nova's
fixture expects and an endpoint override.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unittest
import uuid
from importlib import metadata
from typing import Any

import openstack.connection
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers

from tests.conformance import suite

# GlanceFixture's first image and Nova's default m1.tiny flavor.
IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
FLAVOR_ID = "1"
POLL_SECONDS = 0.05  # a green sleep: lets Nova's greenthreads run

RESULTS: dict[str, dict[str, Any]] = {}
TIMINGS: dict[str, float] = {}


class NovaEnv(integrated_helpers.ProviderUsageBaseTestCase):
    compute_driver = "fake.MediumFakeDriver"
    behaviour = ""

    def connection(self) -> Any:
        sess = ks_session.Session(
            auth=noauth.NoAuth(),
            additional_headers={
                "X-Auth-User": "admin",
                "X-User-Id": "admin",
                "X-Auth-Project-Id": nova_fixtures.PROJECT_ID,
                "X-Roles": "reader,member,admin",
            },
        )
        return openstack.connection.Connection(
            session=sess,
            compute_endpoint_override=self.api_fixture.base_url,
            region_name="RegionOne",
        )

    def run_behaviour(self) -> None:
        self._start_compute("host1")
        self._start_compute("host2")
        target = suite.Target(
            name="nova",
            conn=self.connection(),
            tick=lambda: time.sleep(POLL_SECONDS),
            image_id=IMAGE_ID,
            flavor_id=FLAVOR_ID,
            networks="none",
            # CinderFixture fakes the existence of any volume id it is given.
            volume_for_server=lambda: str(uuid.uuid4()),
            restart_compute=lambda host: self.computes.__setitem__(
                host, self.restart_compute_service(self.computes[host])
            ),
        )
        t0 = time.monotonic()
        RESULTS[self.behaviour] = suite.run_behaviour(self.behaviour, target)
        TIMINGS[self.behaviour] = round(time.monotonic() - t0, 2)


def make_case(name: str) -> unittest.TestCase:
    cls = type(
        f"Nova_{name}", (NovaEnv,), {"behaviour": name, "test_behaviour": NovaEnv.run_behaviour}
    )
    return cls("test_behaviour")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("behaviours", nargs="*")
    args = ap.parse_args(argv)
    wanted = args.behaviours or suite.names("compute")
    test_suite = unittest.TestSuite(make_case(n) for n in wanted)
    t0 = time.monotonic()
    outcome = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(test_suite)
    doc = {
        "target": "nova",
        "versions": {
            p: metadata.version(p) for p in ("nova", "openstack-placement", "openstacksdk")
        },
        "seconds": round(time.monotonic() - t0, 1),
        "behaviours": RESULTS,
        "timings": TIMINGS,
        "unsupported": {},
        "harness_errors": [str(t) + ": " + tb for t, tb in outcome.errors + outcome.failures],
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    return 0 if not doc["harness_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
