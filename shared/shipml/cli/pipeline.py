"""``shipml pipeline``: the model's CD pipeline, chained (``run``) or one stage at a time."""

from __future__ import annotations

from pathlib import Path

import typer

from shipml.errors import ShipmlError

app = typer.Typer(
    help="CD pipeline: train -> evaluate (gates) -> export (ONNX parity) -> build (image) -> validate -> "
    "deploy (canary) -> smoke -> canary analysis -> promote, or roll back. `run` chains them; each stage "
    "also runs alone on the latest run.",
    no_args_is_help=True,
)

CONFIG = typer.Option(None, "--config", "-c", help="pipeline config, YAML or JSON (default: ./pipeline.yaml if any)")
SET = typer.Option(None, "--set", help="override a setting: KEY=VALUE (YAML value; gates.KEY for a gate), repeatable")
RUN = typer.Option(None, "--run", help="run folder (default: the latest run under <workdir>/runs)")


def load_config(config: Path | None, settings: list[str] | None):
    """The config file plus ``--set`` overrides (each a one-line error when malformed)."""
    import yaml

    from shipml.pipeline.config import PipelineConfig

    overrides: dict = {}
    for item in settings or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ShipmlError(f"--set {item!r}: write KEY=VALUE, e.g. --set rows=5000")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ShipmlError(f"--set {item!r}: the value is not valid YAML") from None
        head, _, sub = key.strip().partition(".")
        if sub:
            overrides.setdefault(head, {})[sub] = value
        else:
            overrides[head] = value
    return PipelineConfig.load(config, **overrides)


@app.command("run")
def run_command(config: Path = CONFIG, settings: list[str] = SET,
                until: str = typer.Option(None, "--until", help="stop after this stage")) -> None:
    """Every stage in order; a failed gate, smoke test or canary stops the run (rolled back when deployed)."""
    from shipml.pipeline.run import run_pipeline

    record = run_pipeline(load_config(config, settings), until=until)
    typer.echo(record.summary())
    typer.echo(f"record: {record.path}")


def _stage_command(name: str):
    def command(config: Path = CONFIG, settings: list[str] = SET, run: str = RUN) -> None:
        from shipml.pipeline.run import open_run, run_stage, start_run

        cfg = load_config(config, settings)
        current = start_run(cfg) if name == "train" else open_run(cfg, run)
        try:
            result = run_stage(current, name)
        finally:
            typer.echo(f"record: {current.record.path}")
        why = f" ({result.reason})" if result.reason else ""
        typer.echo(f"{name}: {result.status} in {result.seconds:.2f} s{why}")
        for key, value in result.artifacts.items():
            typer.echo(f"  {key}: {value}")

    command.__doc__ = {
        "train": "Start a run: train the candidate (one version above the deployed one) into a verified bundle.",
        "evaluate": "Gates on held-out rows: ROC AUC vs the deployed version, calibration, the slice.",
        "export": "Export to ONNX with the parity gate.",
        "build": "Build the serving image (tag: commit, model version, bundle hash); record its digest.",
        "validate": "Render the release manifests; strict schema, the kit's policy, kube-score.",
        "deploy": "Apply them: the candidate as canary beside the stable (the first release as stable).",
        "smoke": "Real requests to the built image on 127.0.0.1 (and through kind when pods run).",
        "canary": "Automated canary analysis on real requests split between stable and candidate.",
        "promote": "The candidate becomes stable; the deployed-state file records it.",
        "rollback": "Remove this run's canary (the stable and the deployed-state file stay as they were).",
    }[name]
    return command


for _name in ("train", "evaluate", "export", "build", "validate", "deploy", "smoke", "canary", "promote",
              "rollback"):
    app.command(_name)(_stage_command(_name))


@app.command("status")
def status(config: Path = CONFIG, settings: list[str] = SET) -> None:
    """The version now deployed (the state file) and how the latest run ended."""
    from shipml.pipeline.record import RunRecord, latest_run
    from shipml.pipeline.state import load_state

    cfg = load_config(config, settings)
    state = load_state(cfg.state_path)
    typer.echo(f"deployed ({cfg.state_path}): " + (f"{state.model} v{state.version}, image {state.image} "
               f"({(state.image_id or '?')[:19]}), promoted {state.promoted_at} by run {state.run_id}"
               if state else "nothing yet"))
    try:
        typer.echo(RunRecord.load(latest_run(cfg.runs_dir)).summary())
    except ShipmlError:
        typer.echo("no run yet")


@app.command("show")
def show(run: str = typer.Argument(None, help="run folder or record.json (default: the latest)"),
         config: Path = CONFIG, settings: list[str] = SET,
         as_json: bool = typer.Option(False, "--json", help="the whole record as JSON")) -> None:
    """A run record: each stage's status, time and reason (``--json``: everything)."""
    from shipml.pipeline.record import RunRecord, latest_run

    cfg = load_config(config, settings)
    record = RunRecord.load(Path(run) if run else latest_run(cfg.runs_dir))
    typer.echo(record.model_dump_json(indent=2) if as_json else record.summary())
