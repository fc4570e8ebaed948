"""The ``liferaft`` command line."""

from __future__ import annotations

import typer

from . import agent, catalog, demo, ha, logic, plan, protect, recovery, serve, sim

app = typer.Typer(
    name="liferaft",
    help="Liferaft keeps OpenStack workloads alive when a compute host or a whole datacenter fails.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sim.app, name="sim")
app.add_typer(ha.app, name="ha")
app.add_typer(plan.app, name="plan")
app.add_typer(catalog.app, name="catalog")
app.add_typer(logic.app, name="logic")
app.command("serve")(serve.serve)
protect.register(app)
app.command("recovery")(recovery.recovery)
app.command("recovery-cleanup")(recovery.recovery_cleanup)
app.command("recovery-runs")(recovery.recovery_runs)
app.command("reprotect")(recovery.reprotect)
app.add_typer(recovery.site_app, name="site")
app.command("demo")(demo.demo)
app.command("agent")(agent.agent)


def main() -> None:
    app()
