"""``sealtrail artifacts``: what the artifact definitions can collect."""

from __future__ import annotations

import click

from sealtrail.collectors.definitions import describe, load_registry


@click.group("artifacts")
def command() -> None:
    """List the ForensicArtifacts definitions sealtrail can collect."""


@command.command("list")
@click.option("--os", "os_name", type=click.Choice(["linux", "windows", "darwin"]),
              help="Only definitions for this operating system.")
@click.option("--triage", is_flag=True, help="Only the default triage set for --os.")
def list_(os_name: str | None, triage: bool) -> None:
    """Print artifact names with their descriptions.

    Example: sealtrail artifacts list --os linux
    """
    registry = load_registry()
    if triage:
        if not os_name:
            raise click.UsageError("--triage needs --os")
        for name in registry.triage_names(os_name):
            click.echo(name)
        return
    for name, doc, systems in describe(registry, os_name):
        click.echo(f"{name:<45} {','.join(systems):<22} {doc.splitlines()[0] if doc else ''}")
