"""``liferaft recovery DATACENTER [--mode disaster|test|planned]``: recover a site here."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from .client import fail, handle_errors, progress
from .options import Api, api_command

SETTLED = {"done", "failed", "cancelled", "paused", "rolled_back", "rollback_failed"}


def render(run: dict[str, Any]) -> str:
    lines = [
        f"{run.get('mode', 'disaster')} recovery {run['id'][:12]} of {run['protected_site']} "
        f"at {run['recovery_site']}: {run['state']}"
    ]
    rep = run.get("report")
    if rep:
        lines.append(
            f"  RTO {rep['rto_s']:.1f}s: {rep['servers_recovered']} servers, "
            f"{rep['volumes_recovered']} volumes recovered and verified"
        )
    for t in run.get("timeline", []):
        lines.append(f"  {t['start_s']:8.1f}s → {t['end_s']:8.1f}s  {t['step']} {t['state']}")
    for name, err in (run.get("failed_steps") or {}).items():
        lines.append(f"  {name}: {err}")
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    if run.get("cleanup"):
        c = run["cleanup"]
        lines.append(f"  cleanup: {c['state']} ({c.get('deleted', 0)} resources deleted)")
    elif run.get("mode") == "test" and run["state"] == "done":
        lines.append(f"  clean up with: liferaft recovery-cleanup {run['id']}")
    return "\n".join(lines)


@api_command
def recovery(
    api: Api,
    datacenter: Annotated[str, typer.Argument(help="The (failed) site to recover here.")],
    mode: Annotated[
        str,
        typer.Option(
            help="disaster (site lost: --declare-down it), test (isolated networks, production "
            "untouched), planned (stop the source, final sync, recover: no data lost), failback "
            "(a planned run home of a workload reprotected with 'liferaft reprotect')."
        ),
    ] = "disaster",
    cleanup: Annotated[
        bool, typer.Option("--cleanup", help="Test mode: delete what the run made once it settled.")
    ] = False,
    declare_down: Annotated[
        str | None,
        typer.Option(
            "--declare-down",
            help="Declare SITE down (it can no longer run or write anything); must name DATACENTER.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run until it settles.")] = True,
) -> None:
    """Recover DATACENTER at this controller's site from its newest verified checkpoints."""
    with handle_errors():
        client = api.client()
        if cleanup and mode != "test":
            raise fail("--cleanup is for --mode test")
        body = {"datacenter": datacenter, "mode": mode, "declare_down": declare_down}
        run = client.post("/v1/recovery", body)
        if wait or cleanup:
            with progress(f"recovering {datacenter}", total=run["steps_total"]) as update:
                while run["state"] not in SETTLED:
                    time.sleep(0.5)  # polling a remote API in real time
                    run = client.get(f"/v1/recovery/runs/{run['id']}")
                    update(completed=run["steps_done"])
        if cleanup:
            run = follow_cleanup(client, run)
    api.output(run, render)
    if wait and run["state"] != "done":
        raise fail(f"recovery {run['id']} ended {run['state']}")


def follow_cleanup(api: Any, run: dict[str, Any]) -> dict[str, Any]:
    """Start a test run's cleanup and follow it until it settles."""
    run = api.post(f"/v1/recovery/runs/{run['id']}/cleanup", {})
    with progress("cleaning up", total=None):
        while (run.get("cleanup") or {}).get("state") not in SETTLED:
            time.sleep(0.5)  # polling a remote API in real time
            run = api.get(f"/v1/recovery/runs/{run['id']}")
    return run


@api_command
def recovery_cleanup(
    api: Api,
    run_id: Annotated[str, typer.Argument(help="The test run whose resources to delete.")],
) -> None:
    """Delete everything a test run made at this site (idempotent; resumes after a crash)."""
    with handle_errors():
        client = api.client()
        run = follow_cleanup(client, {"id": run_id})
    api.output(run, render)
    if run["cleanup"]["state"] != "done":
        raise fail(f"cleanup of {run_id} ended {run['cleanup']['state']}")


@api_command
def recovery_runs(
    api: Api,
    run_id: Annotated[str | None, typer.Argument(help="One run (default: every run).")] = None,
) -> None:
    """Recovery runs at this site and their state (one run in detail)."""
    with handle_errors():
        client = api.client()
        if run_id is not None:
            api.output(client.get(f"/v1/recovery/runs/{run_id}"), render)
            return
        runs = client.get("/v1/recovery/runs")
    api.output(
        runs,
        lambda d: (
            "\n".join(
                f"{r['id']}  {r['mode']:<8} {r['protected_site']} → {r['recovery_site']}"
                for r in d["runs"]
            )
            or "no runs"
        ),
    )


@api_command
def reprotect(
    api: Api,
    run_id: Annotated[str, typer.Argument(help="A finished disaster or planned run at this site.")],
) -> None:
    """Protect what RUN recovered here (servers, volumes, order, tiers) towards the site it came
    from, and take a first checkpoint: then 'liferaft recovery HERE --mode failback' there."""
    with handle_errors():
        client = api.client()
        d = client.post(f"/v1/recovery/runs/{run_id}/reprotect", {})
    api.output(
        d,
        lambda d: "\n".join(
            f"group {g['name']}: {len(g['servers'])} servers, {len(g['volumes'])} volumes, "
            f"protected from {g['site']} to {g['recovery_site']}"
            for g in d["groups"]
        ),
    )


site_app = typer.Typer(help="Sites kept quarantined after their workloads were recovered here.")


def render_sites(d: dict[str, Any]) -> str:
    if not d["sites"]:
        return "no site is quarantined here"
    lines = []
    for s in d["sites"]:
        seen = (
            "unreachable"
            if s["reachable"] is False
            else "reachable"
            if s["reachable"]
            else "not checked yet"
        )
        lines.append(f"{s['site']}: quarantined ({seen}), {len(s['servers'])} old servers")
        for sid, st in sorted(s["server_status"].items()):
            lines.append(f"  {sid}  {st}")
    return "\n".join(lines)


@site_app.command("status")
@api_command
def site_status(api: Api) -> None:
    """Quarantined sites: their old servers, stopped, locked and off their addresses."""
    api.show("/v1/sites/quarantine", render_sites)


@site_app.command("release")
@api_command
def site_release(
    api: Api,
    site: Annotated[str, typer.Argument(help="The quarantined site to release.")],
) -> None:
    """Lift SITE's quarantine: its old servers are unlocked and their ports brought up (they stay
    stopped: start them yourself once their recovered copies are gone)."""
    with handle_errors():
        client = api.client()
        run = client.post(f"/v1/sites/{site}/release", {})
        while run["state"] not in SETTLED:
            time.sleep(0.5)  # polling a remote API in real time
            run = client.get(f"/v1/recovery/runs/{run['id']}")
    api.output(run, render)
    if run["state"] != "done":
        raise fail(f"release of {site} ended {run['state']}")
