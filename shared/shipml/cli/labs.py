"""``shipml labs build [--check]``: labs generated from solutions."""

from __future__ import annotations

import typer

from shipml.errors import ShipmlError

app = typer.Typer(help="Labs: generated from solutions/ (one source of truth).", no_args_is_help=True)


@app.command("build")
def build(check: bool = typer.Option(False, "--check", help="only report stale labs; exit 1 if any")) -> None:
    """Write labs/ from solutions/ (or check that labs/ is up to date)."""
    from shipml.labs import build as build_labs
    from shipml.paths import repo_root

    changed = build_labs(check=check)
    names = ", ".join(p.name for p in changed)
    if check and changed:
        raise ShipmlError(f"labs/ is stale ({names}); run 'shipml labs build' and commit the result")
    root = repo_root()
    typer.echo(f"labs up to date ({len(list((root / 'labs').glob('lab*.ipynb')))} labs)" if not changed
               else f"rebuilt: {names}")
