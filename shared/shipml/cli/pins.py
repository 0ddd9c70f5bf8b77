"""``shipml pins [--check | --write | --lock]``: one list of pins, the rest generated from it."""

from __future__ import annotations

import typer

from shipml.errors import ShipmlError


def pins(
    check: bool = typer.Option(False, "--check", help="exit 1 if a generated file is stale or a pin is off"),
    write: bool = typer.Option(False, "--write", help="regenerate environment.yml and deploy/docker/requirements-*"),
    lock: bool = typer.Option(False, "--lock", help="rewrite constraints.txt from this environment"),
) -> None:
    """constraints.txt pins every version; environment.yml and the images' requirements come from it."""
    from shipml import pins as pins_mod
    from shipml.paths import repo_root

    if sum((check, write, lock)) != 1:
        raise ShipmlError("choose one of --check, --write or --lock")
    root = repo_root()
    if lock:
        typer.echo(f"wrote {pins_mod.lock(root).relative_to(root)}")
        return
    if write:
        changed = pins_mod.write(root)
        typer.echo("up to date" if not changed else "wrote " + ", ".join(str(p.relative_to(root)) for p in changed))
        return
    found = pins_mod.problems(root)
    if found:
        raise ShipmlError("pins out of step: " + "; ".join(found) + " (fix pyproject.toml or constraints.txt, "
                          "then `shipml pins --write`)")
    typer.echo(f"pins ok ({len(pins_mod.read_constraints(root / pins_mod.CONSTRAINTS))} in {pins_mod.CONSTRAINTS})")
