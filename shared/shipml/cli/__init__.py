"""The ``shipml`` command: one entry point, one sub-command module per concern.

User mistakes (:class:`shipml.errors.ShipmlError`, missing files) end as one line on stderr and a
non-zero exit. Set ``SHIPML_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_errors  # typer vendors click

# Sub-command modules import their heavy dependencies inside the commands, so start-up stays quick.
from shipml.cli import batch, cluster, core, docker, edge, grade, labs, monitor, security, serve
from shipml.cli import pins as pins_cli
from shipml.cli import pipeline as pipeline_cli
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
app.add_typer(batch.app, name="batch")
app.add_typer(edge.app, name="edge")
app.command("serve")(serve.serve)
app.add_typer(docker.app, name="docker")
app.add_typer(cluster.app, name="cluster")
app.command("grade")(grade.grade)
app.command("pins")(pins_cli.pins)
app.add_typer(monitor.app, name="monitor")
app.add_typer(pipeline_cli.app, name="pipeline")
security.register(app)


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
