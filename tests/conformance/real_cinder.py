"""Run the block-storage behaviours against Cinder's own functional environment.

Only for the separate conformance venv, in its own process (Cinder's test
base monkey-patches with eventlet too, and its options share oslo.config's
global ``CONF`` with Nova's, so the two never share a process)::

    python -m tests.conformance.real_cinder --out cinder.json [BEHAVIOUR ...]

Each behaviour gets a fresh ``_FunctionalTestBase``: cinder-api (a real
eventlet WSGI server on 127.0.0.1, no-auth middleware), cinder-scheduler,
cinder-volume with ``FakeLoggingVolumeDriver``, SQLite and fake messaging;
we add cinder-backup with the POSIX backup driver writing under a temporary
directory.  openstacksdk runs in the same process with the no-auth token
``admin:<project>`` and an endpoint override.

What Cinder's environment cannot do, and how it is bridged (each bridge
stands in for a component that is absent, never for Cinder's own logic):

- *Backup data path.*  cinder-backup reads a volume by attaching it on the
  backup host through os-brick, which needs ``iscsiadm`` under privsep
  (root); Cinder's fixtures refuse to start a privsep helper ("You have
  attempted to start a privsep helper. This is not allowed in the gate").
  ``--no-backup-bridge`` shows that: the backup stays ``creating`` and the
  volume ``backing-up``.  The bridge replaces os-brick's attach/detach on the
  backup host with an in-memory 1 MiB device; Cinder's backup and restore
  state machines, RPC and the POSIX driver run unchanged.
- *Backup service discovery.*  The scheduler learns about backup services
  from a periodic capability report; the bridge delivers the service's own
  report once at start instead of waiting for the periodic task.
- *Nova.*  Deleting an attachment that has connection info asks Nova whether
  the server still uses the volume; there is no Nova here, so that lookup
  answers "not found" (what Nova answers once it has detached).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import unittest
from importlib import metadata
from typing import Any

import cinder.backup.drivers.posix  # noqa: F401 - registers backup_posix_path
import fixtures
import openstack.connection
from cinder import context as cinder_context
from cinder.tests.functional import functional_helpers
from cinder.tests.unit import fake_constants as fake
from cinder.volume import configuration
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from novaclient import exceptions as nova_exc

from tests.conformance import suite

VOLUME_TYPE = "conformance-fake"
POLL_SECONDS = 0.05
BACKUP_BRIDGE = True
BACKUP_LIMIT = (
    "cinder-backup attaches the volume through os-brick (iscsiadm via privsep, "
    "root); Cinder's test fixtures refuse to start a privsep helper, so the "
    "backup stays 'creating' and the volume 'backing-up'"
)

RESULTS: dict[str, dict[str, Any]] = {}
TIMINGS: dict[str, float] = {}


class CinderEnv(functional_helpers._FunctionalTestBase):
    behaviour = ""

    def _get_flags(self) -> dict[str, Any]:
        f: dict[str, Any] = super()._get_flags()
        f["volume_driver"] = {
            "v": "cinder.tests.fake_driver.FakeLoggingVolumeDriver",
            "g": configuration.SHARED_CONF_GROUP,
        }
        f["default_volume_type"] = {"v": VOLUME_TYPE}
        f["backup_driver"] = {"v": "cinder.backup.drivers.posix.PosixBackupDriver"}
        f["backup_posix_path"] = {"v": self.useFixture(fixtures.TempDir()).path}
        return f

    def _bridges(self) -> None:
        self.useFixture(
            fixtures.MockPatch(
                "cinder.compute.nova.API.get_server_volume",
                side_effect=nova_exc.NotFound(404),
            )
        )
        if not BACKUP_BRIDGE:
            return
        self.useFixture(
            fixtures.MockPatch(
                "cinder.volume.volume_utils.brick_get_connector_properties",
                return_value=dict(suite.CONNECTOR),
            )
        )
        self.useFixture(
            fixtures.MockPatch(
                "cinder.backup.manager.BackupManager._attach_device",
                side_effect=lambda *a, **k: {"device": {"path": io.BytesIO(b"\0" * 2**20)}},
            )
        )
        self.useFixture(fixtures.MockPatch("cinder.backup.manager.BackupManager._detach_device"))

    def connection(self) -> Any:
        sess = ks_session.Session(
            auth=noauth.NoAuth(),
            additional_headers={"X-Auth-Token": f"admin:{fake.PROJECT_ID}"},
        )
        return openstack.connection.Connection(
            session=sess,
            block_storage_endpoint_override=f"http://{self.osapi.host}:{self.osapi.port}/v3",
            region_name="RegionOne",
        )

    def run_behaviour(self) -> None:
        self._bridges()
        backup = self.start_service("backup")
        backup.manager._report_driver_status(cinder_context.get_admin_context())
        self.scheduler.manager.driver.update_service_capabilities(
            "backup", backup.host, backup.manager.last_capabilities, None, None
        )
        conn = self.connection()
        conn.block_storage.create_type(name=VOLUME_TYPE)
        target = suite.Target(name="cinder", conn=conn, tick=lambda: time.sleep(POLL_SECONDS))
        if self.behaviour == "volume_backup_restore" and not BACKUP_BRIDGE:
            target.max_ticks = 60
        t0 = time.monotonic()
        RESULTS[self.behaviour] = suite.run_behaviour(self.behaviour, target)
        TIMINGS[self.behaviour] = round(time.monotonic() - t0, 2)


def make_case(name: str) -> unittest.TestCase:
    cls = type(
        f"Cinder_{name}",
        (CinderEnv,),
        {"behaviour": name, "test_behaviour": CinderEnv.run_behaviour},
    )
    return cls("test_behaviour")


def main(argv: list[str] | None = None) -> int:
    global BACKUP_BRIDGE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-backup-bridge", action="store_true", help="show the backup limit")
    ap.add_argument("behaviours", nargs="*")
    args = ap.parse_args(argv)
    BACKUP_BRIDGE = not args.no_backup_bridge
    wanted = args.behaviours or suite.names("block-storage")
    t0 = time.monotonic()
    outcome = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(
        unittest.TestSuite(make_case(n) for n in wanted)
    )
    doc = {
        "target": "cinder",
        "versions": {p: metadata.version(p) for p in ("cinder", "openstacksdk")},
        "seconds": round(time.monotonic() - t0, 1),
        "behaviours": RESULTS,
        "timings": TIMINGS,
        "bridges": {
            "backup_data_path": BACKUP_BRIDGE,
            "backup_limit_without_bridge": BACKUP_LIMIT,
        },
        "unsupported": {} if BACKUP_BRIDGE else {"volume_backup_restore": BACKUP_LIMIT},
        "harness_errors": [f"{t}: {tb}" for t, tb in outcome.errors + outcome.failures],
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    return 0 if not doc["harness_errors"] else 1


if __name__ == "__main__":
    tempfile.tempdir = tempfile.gettempdir()
    sys.exit(main())
