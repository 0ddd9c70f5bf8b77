"""The ``shipml`` command: one entry point, one sub-command module per concern.

User mistakes (:class:`shipml.errors.ShipmlError`, missing files) end as one line on stderr and a
non-zero exit. Set ``SHIPML_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_errors  # typer vendors click

from shipml.cli import core, labs
from shipml.errors import ShipmlError

app = typer.Typer(
    name="shipml",
    help="shipml: train, package, score, serve, containerise and grade models (a teaching kit).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core.register(app)
app.add_typer(labs.app, name="labs")
# Each concern registers its sub-commands below, one line each.
app.add_typer(__import__("shipml.cli.cluster", fromlist=["app"]).app, name="cluster")
app.add_typer(__import__("shipml.cli.docker", fromlist=["app"]).app, name="docker")
app.add_typer(__import__("shipml.cli.edge", fromlist=["app"]).app, name="edge")
app.command("serve")(__import__("shipml.cli.serve", fromlist=["serve"]).serve)
app.command("grade")(__import__("shipml.cli.grade", fromlist=["grade"]).grade)
app.add_typer(__import__("shipml.cli.batch", fromlist=["app"]).app, name="batch")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 user error, 2 usage error, 3 unexpected)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="shipml", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("shipml: aborted", file=sys.stderr)
        return 130
    except click_errors.NoArgsIsHelpError as exc:
        del exc  # typer has already printed the help
        return 2
    except click_errors.ClickException as exc:
        where = getattr(getattr(exc, "ctx", None), "command_path", "shipml")
        print(f"shipml: error: {exc.format_message()} (see '{where} --help')", file=sys.stderr)
        return exc.exit_code
    except ShipmlError as exc:
        print(f"shipml: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"shipml: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("shipml: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless asked for more
        if os.environ.get("SHIPML_DEBUG"):
            raise
        print(f"shipml: unexpected error: {type(exc).__name__}: {exc} (SHIPML_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 3
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
