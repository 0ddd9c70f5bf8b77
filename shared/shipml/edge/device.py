"""What runs on the device: ``python -m shipml.edge predict|serve EDGE_BUNDLE``.

Only the standard library (``argparse``, ``csv``, ``json``, ``http.server``), numpy and onnxruntime:
no typer, no FastAPI, no pandas, no scikit-learn, so the edge image stays small. The development
machine's ``shipml edge predict`` calls the same :func:`predict_file`.

HTTP API of ``serve`` (JSON):

* ``GET /health`` → ``{"status": "ok", "model": ..., "version": ..., "backend": "onnx"}``
* ``POST /predict`` with ``{"instances": [{feature: value, ...}, ...]}`` →
  ``{"model": ..., "version": ..., "predictions": [{"label": 0, "probabilities": {"legit": .., "fraud": ..}}]}``;
  a bad request gets 400 with ``{"error": "one line", "problems": [...]}``; a model that fails on valid
  rows (it raises, or answers NaN) gets 500 with ``{"error": ...}`` — the device's fault, not the client's.

Serving a device folder, a version swapped in live is on probation first (:mod:`shipml.edge.probation`):
a request it fails is answered by the previous version, and too many failures roll it back.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from shipml.edge.probation import ModelFailure, ProbationSettings, Serving, score_checked
from shipml.edge.runtime import OnnxPredictor
from shipml.errors import SchemaError, ShipmlError
from shipml.rows import columns_from_rows
from shipml.schema import FeatureSchema

log = logging.getLogger("shipml.edge.device")

MAX_BODY_BYTES = 1 << 20
MAX_INSTANCES = 10_000
_TRUE, _FALSE = {"true", "1", "yes", "t", "y"}, {"false", "0", "no", "f", "n"}


# ---- input: CSV (stdlib csv) or JSON, into columns -------------------------------------------------

def _cell(text: str, dtype: str) -> Any:
    """A CSV cell as the schema's type; text that is not a number stays text (validation reports it)."""
    text = text.strip()
    if dtype == "category":
        return text
    if dtype == "bool" and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    try:
        return float(text)
    except ValueError:
        return text if text else None


def read_csv_columns(path: str | Path, schema: FeatureSchema) -> dict[str, list[Any]]:
    """Columns of a CSV file, typed by the schema (other columns kept as text, e.g. ``id``)."""
    path = Path(path)
    if not path.is_file():
        raise ShipmlError(f"{path}: no such file")
    types = {f.name: f.dtype for f in schema.features}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ShipmlError(f"{path}: empty CSV file (a header line is needed)")
        header = [h.strip() for h in header]
        columns: dict[str, list[Any]] = {h: [] for h in header}
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ShipmlError(f"{path}: line {line_no} has {len(row)} fields, the header has {len(header)}")
            for name, text in zip(header, row, strict=True):
                columns[name].append(_cell(text, types[name]) if name in types else text)
    return columns


def records_to_columns(instances: Any, schema: FeatureSchema) -> dict[str, list[Any]]:
    """``[{feature: value}, ...]`` to columns; a record lacking a field or with an unknown one is an error."""
    if isinstance(instances, list) and len(instances) > MAX_INSTANCES:
        raise SchemaError(f"at most {MAX_INSTANCES:,} instances per request, got {len(instances):,}")
    return columns_from_rows(instances, schema.names, optional=(schema.id_column,))


def read_input(path: str | Path, schema: FeatureSchema) -> dict[str, list[Any]]:
    """A ``.csv`` file, or a ``.json`` file holding ``{"instances": [...]}`` or a list of records."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_columns(path, schema)
    if suffix == ".json":
        if not path.is_file():
            raise ShipmlError(f"{path}: no such file")
        try:
            body = json.loads(path.read_text())
        except ValueError as exc:
            raise ShipmlError(f"{path}: not valid JSON ({exc})") from None
        return records_to_columns(body.get("instances") if isinstance(body, dict) else body, schema)
    raise ShipmlError(f"{path}: unsupported input type '{suffix or '(none)'}'; use .csv or .json")


# ---- scoring ---------------------------------------------------------------------------------------

def validated_columns(predictor: OnnxPredictor, columns: Mapping[str, Sequence[Any]]) -> Mapping[str, Any]:
    """The columns converted for the model, or one :class:`SchemaError` line naming every problem."""
    validation = predictor.validate(columns)
    if validation.missing:
        raise SchemaError(f"missing column(s): {', '.join(validation.missing)}")
    if not validation.ok:
        raise SchemaError(f"{validation.n_bad} invalid row(s): " + "; ".join(validation.problems(3)))
    return validation.columns


def score_columns(predictor: OnnxPredictor, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """Validate (every problem reported, one line) then return probabilities (rows, classes)."""
    return predictor.predict_proba(validated_columns(predictor, columns))


def prediction_records(predictor: OnnxPredictor, proba: np.ndarray) -> list[dict[str, Any]]:
    labels = predictor.metadata.class_labels
    names = predictor.metadata.class_names
    best = predictor.decide(proba)  # the bundle's decision threshold
    return [{"label": labels[int(b)], "probabilities": {n: round(float(p), 7) for n, p in zip(names, row, strict=True)}}
            for b, row in zip(best, proba, strict=True)]


def predict_file(bundle: str | Path, input_path: str | Path, out: Any = None, trusted_keys: Any = None) -> int:
    """Score a CSV/JSON file with an edge bundle; write CSV (``id``, ``label``, ``p_<class>``) to ``out``."""
    predictor = OnnxPredictor.load(bundle, trusted_keys=trusted_keys)
    columns = read_input(input_path, predictor.schema)
    proba = score_columns(predictor, columns)
    out = out or sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    id_col = predictor.schema.id_column
    ids: Iterable[Any] | None = columns.get(id_col)
    header = ([id_col] if ids is not None else []) + ["label"] + [f"p_{n}" for n in predictor.metadata.class_names]
    writer.writerow(header)
    labels = np.asarray(predictor.metadata.class_labels)[predictor.decide(proba)]
    for i, (label, row) in enumerate(zip(labels, proba, strict=True)):
        writer.writerow(([ids[i]] if ids is not None else []) + [label.item()] + [f"{p:.7f}" for p in row])
    return len(proba)


# ---- the stdlib HTTP server ------------------------------------------------------------------------

class EdgeHandler(BaseHTTPRequestHandler):
    """``GET /health`` and ``POST /predict``; the predictor is set on the server."""

    server_version = "shipml-edge"
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: the headers and the body leave in two writes; with Nagle's algorithm the body waited for
    # the client's delayed ACK, 40 ms on every keep-alive request (p50 44 ms -> ~1 ms on loopback).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _send(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        live: Serving = self.server.live  # type: ignore[attr-defined]
        predictor = live.predictor
        if self.path.split("?")[0] == "/health":
            body = {"status": "ok", "model": predictor.name, "version": predictor.version, "backend": "onnx"}
            if live.probation is not None and live.probation.outcome is None:
                body["probation"] = live.probation.status()
            self._send(200, body)
        else:
            self._send(404, {"error": f"no route GET {self.path}; try GET /health or POST /predict"})

    def do_POST(self) -> None:  # noqa: N802
        live: Serving = self.server.live  # type: ignore[attr-defined]  # one snapshot for the whole request
        predictor, probation = live.predictor, live.probation
        if self.path.split("?")[0] != "/predict":
            self._send(404, {"error": f"no route POST {self.path}; try POST /predict"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413 if length > MAX_BODY_BYTES else 411,
                       {"error": f"send a JSON body with a Content-Length of at most {MAX_BODY_BYTES} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError as exc:
            self._send(400, {"error": f"body is not valid JSON ({exc})"})
            return
        try:  # the client's part: anything wrong here is a 400, and no model has run
            if not isinstance(body, dict) or "instances" not in body:
                raise SchemaError('expected a JSON object {"instances": [{...}, ...]}')
            columns = records_to_columns(body["instances"], predictor.schema)
            valid = validated_columns(predictor, columns)
        except ShipmlError as exc:
            self._send(400, {"error": str(exc), "problems": str(exc).split("; ")})
            return
        try:  # the server's part: a model that fails valid rows is a 5xx (or, on probation, the fallback's answer)
            proba = score_checked(predictor, valid)
        except ModelFailure as failure:
            log.warning("%s v%s failed a request: %s%s", predictor.name, predictor.version, failure.reason,
                        f" ({failure.detail})" if failure.detail else "")
            fallback = probation.fallback if probation is not None else None
            answered = self._fallback(fallback, columns) if fallback is not None else None
            if answered is not None:  # a request both versions fail is no evidence against the new one
                probation.record(failure.reason)  # type: ignore[union-attr]
            if answered is None:
                self._send(500, {"error": f"the model failed on this request: it {failure.reason} (a fault of "
                                          "the device, not of the request; the device log says more)"})
                return
            predictor, proba = answered
            self._send(200, self._answer(predictor, proba), {"X-Shipml-Fallback": f"v{predictor.version}"})
            return
        if probation is not None:
            probation.record()
        self._send(200, self._answer(predictor, proba))

    @staticmethod
    def _fallback(fallback: OnnxPredictor, columns: Mapping[str, Sequence[Any]]) -> tuple[OnnxPredictor,
                                                                                            np.ndarray] | None:
        """The previous model's answer to a request the model on probation failed, or None if it fails too."""
        try:
            return fallback, score_checked(fallback, validated_columns(fallback, columns))
        except (ShipmlError, ModelFailure) as exc:
            log.warning("the fallback v%s failed the request too: %s", fallback.version, exc)
            return None

    @staticmethod
    def _answer(predictor: OnnxPredictor, proba: np.ndarray) -> dict[str, Any]:
        return {"model": predictor.name, "version": predictor.version,
                "predictions": prediction_records(predictor, proba)}


class EdgeServer(ThreadingHTTPServer):
    """The device's HTTP server; ``live`` (a :class:`~shipml.edge.probation.Serving`) is what it serves."""

    daemon_threads = True
    live: Serving
    verbose: bool = False

    @property
    def predictor(self) -> OnnxPredictor:
        return self.live.predictor

    @predictor.setter
    def predictor(self, predictor: OnnxPredictor) -> None:
        self.live = Serving(predictor)


def make_server(bundle: str | Path, host: str = "127.0.0.1", port: int = 8080, verbose: bool = False,
                trusted_keys: Any = None) -> EdgeServer:
    """A ready (bound, not yet serving) HTTP server for an edge bundle; call ``serve_forever()``.

    ``bundle`` may be a device folder (``shipml.edge.update``): its ``current`` version is served, and
    a new one swapped in by ``update`` is picked up within two seconds (see :func:`watch_device`), on
    probation (:mod:`shipml.edge.probation`).
    """
    from shipml.edge.update import resolve_bundle

    predictor = OnnxPredictor.load(resolve_bundle(bundle), trusted_keys=trusted_keys)
    try:
        server = EdgeServer((host, port), EdgeHandler)
    except OSError as exc:
        raise ShipmlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.predictor = predictor
    server.verbose = verbose
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="shipml-edge", daemon=True)
    thread.start()
    return thread


# ---- the command -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shipml.edge",
                                     description="Run an ONNX edge bundle with onnxruntime only.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="score a .csv or .json file; CSV on stdout")
    p.add_argument("bundle", help="edge bundle folder (made by 'shipml edge export')")
    p.add_argument("--input", required=True, help=".csv with a header, or .json with {\"instances\": [...]}")
    p.add_argument("--output", help="write the CSV here instead of stdout")
    s = sub.add_parser("serve", help="HTTP: GET /health, POST /predict")
    s.add_argument("bundle")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 inside a container)")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--verbose", action="store_true", help="log every request")
    defaults = ProbationSettings()
    s.add_argument("--probation-requests", type=int, metavar="N",
                   help="after a live swap, watch the new model for its first N scored requests ... "
                        f"(default {defaults.requests}, or SHIPML_EDGE_PROBATION_REQUESTS; 0: no probation)")
    s.add_argument("--probation-seconds", type=float, metavar="T",
                   help=f"... or T seconds, whichever ends first (default {defaults.seconds:g})")
    s.add_argument("--probation-max-failures", type=int, metavar="K",
                   help="failed requests tolerated during probation; one more rolls back to the previous "
                        f"version (default {defaults.max_failures})")
    for cmd in (p, s):
        cmd.add_argument("--trusted-keys", help="folder of trusted *.pub keys: only bundles they signed load "
                                                "(default SHIPML_TRUSTED_KEYS)")
    u = sub.add_parser("update", help="verify, self-test and swap in a new bundle on a device folder")
    u.add_argument("device", help="device folder (current/, previous/, versions/, update.log)")
    u.add_argument("bundle", help="the new edge bundle")
    u.add_argument("--trusted-keys", help="folder of trusted *.pub keys (default SHIPML_TRUSTED_KEYS)")
    r = sub.add_parser("rollback", help="go back to the previous version on a device folder")
    r.add_argument("device")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("update", "rollback"):
            from shipml.edge import update

            if args.command == "rollback":
                print(f"rolled back to {update.rollback(args.device).name}", file=sys.stderr)
                return 0
            result = update.apply_update(args.device, args.bundle, trusted_keys=args.trusted_keys)
            print(("updated: " if result.accepted else "shipml-edge: update refused: ") + result.reason,
                  file=sys.stderr)
            return 0 if result.accepted else 1
        if args.command == "predict":
            if args.output:
                with open(args.output, "w", newline="") as out:
                    n = predict_file(args.bundle, args.input, out, trusted_keys=args.trusted_keys)
                print(f"scored {n:,} rows -> {args.output}", file=sys.stderr)
            else:
                predict_file(args.bundle, args.input, trusted_keys=args.trusted_keys)
            return 0
        probation = ProbationSettings.from_env(requests=args.probation_requests, seconds=args.probation_seconds,
                                               max_failures=args.probation_max_failures)
        server = make_server(args.bundle, args.host, args.port, args.verbose, trusted_keys=args.trusted_keys)
        from shipml.edge.update import watch_device

        logging.basicConfig(level=logging.WARNING, format="shipml-edge: %(message)s", stream=sys.stderr)
        watch_device(server, args.bundle, trusted_keys=args.trusted_keys, probation=probation)
        predictor = server.predictor  # type: ignore[attr-defined]
        host, port = server.server_address[:2]
        print(f"serving {predictor.name} v{predictor.version} (onnx) on http://{host}:{port}", file=sys.stderr,
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    except ShipmlError as exc:
        print(f"shipml-edge: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shipml-edge: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 1
