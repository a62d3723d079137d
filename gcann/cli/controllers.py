"""``gcann controllers``: the registered training controllers, their sources, laws and settings."""
from __future__ import annotations

import json

import click

__all__ = ["controllers"]

MAX_SHOWN = 8   # settings listed in the text form; --json lists all


@click.command("controllers")
@click.option("--json", "as_json", is_flag=True, help="print the listing as JSON")
def controllers(as_json):
    """List every controller: name, source, law in one line, defaults."""
    from gcann.control import CONTROLLERS

    # each setting's default at a glance (Controller.defaults; the settings keep theirs with range and help)
    docs = [{**cls.describe(), "defaults": cls.defaults()} for cls in CONTROLLERS.values()]
    if as_json:
        click.echo(json.dumps(docs, indent=1))
        return
    for d in docs:
        click.echo(f"{d['name']}: {d['law']}")
        click.echo(f"    source: {d['source']}")
        if d["needs"]:
            click.echo(f"    observes: {', '.join(d['needs'])}")
        if d["knobs"]:
            click.echo(f"    sets: {', '.join(d['knobs'])}")
        items = [f"{k}={v['default']}" for k, v in d["settings"].items()]
        if len(items) > MAX_SHOWN:
            items = items[:1] + [f"and {len(items) - 1} more (gcann controllers --json lists them)"]
        if items:
            click.echo(f"    settings: {', '.join(items)}")
