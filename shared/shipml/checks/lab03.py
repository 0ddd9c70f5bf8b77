"""Lab 03 — fix a broken Dockerfile: the checks build your Dockerfile, run it and inspect it.

The app is a tiny fraud scorer with the standard library only (``app.py`` + ``model.json``, written
by :func:`write_context`), so every build takes seconds and needs no network. The broken Dockerfile
copies the code before installing the dependencies (the lecture installs them first), ``EXPOSE 5000``
for an app on 8080, root, no healthcheck. ``collect`` (in the student's kernel) builds and runs the image once per
Dockerfile and turns what it saw into plain data; ``evaluate`` only reads that data. Without a Docker
engine the checks say so and give no points (the lab still runs to the end). The probabilities the
container must answer are the grader's (``shipml.grading.keys.lab03``): instant feedback checks only that
it answers with probabilities.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from shipml.checks import Context, Question

APP_PORT = 8080
BASE_IMAGE = "python:3.11-slim"

MODEL = {"bias": -4.0, "weights": {"amount": 0.0008, "night": 1.5, "card_present": -1.2}}

APP = '''"""A tiny fraud scorer: GET /health, POST /predict {"amount": .., "hour": .., "card_present": ..}."""
import json
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.json")))
PORT = int(os.environ.get("PORT", "8080"))


def score(row):
    features = {"amount": float(row["amount"]), "night": float(int(row["hour"]) < 6),
                "card_present": float(bool(row["card_present"]))}
    z = MODEL["bias"] + sum(w * features[name] for name, w in MODEL["weights"].items())
    return 1 / (1 + math.exp(-z))


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"ok": True}) if self.path == "/health" else self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/predict":
            return self._send(404, {"error": "not found"})
        row = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        try:
            self._send(200, {"fraud_probability": score(row)})
        except (KeyError, TypeError, ValueError) as exc:
            self._send(422, {"error": f"bad row: {exc}"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"scoring on port {PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
'''

REQUIREMENTS = "# app.py needs only the standard library; real apps pin their packages here\n"

BROKEN_DOCKERFILE = f"""FROM {BASE_IMAGE}

WORKDIR /app

# Copy everything, then install the requirements
COPY . .
RUN pip install -r requirements.txt

# Expose port for the app
EXPOSE 5000

CMD ["python", "app.py"]
"""

# Rows the checks send to the image (what it must answer is the grader's to know).
PROBE_ROWS = [
    {"amount": 12.5, "hour": 14, "card_present": True},
    {"amount": 3200.0, "hour": 3, "card_present": False},
    {"amount": 900.0, "hour": 23, "card_present": False},
]


def write_context(folder: str | Path, dockerfile: str | None = None, app: str = APP) -> Path:
    """Write the app's build context (app.py, model.json, requirements.txt, .dockerignore) to ``folder``,
    and ``dockerfile`` as its Dockerfile when given."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(app)
    (folder / "model.json").write_text(json.dumps(MODEL, indent=2) + "\n")
    (folder / "requirements.txt").write_text(REQUIREMENTS)
    (folder / ".dockerignore").write_text("Dockerfile\n.dockerignore\n__pycache__\n")
    if dockerfile is not None:
        (folder / "Dockerfile").write_text(dockerfile)
    return folder


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\s*\n", " ", dockerfile)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


# ---- collect: build, run and inspect once per Dockerfile (in the student's kernel) ---------------

_FACTS: dict[str, dict] = {}


def _facts(dockerfile: Any) -> dict:
    from shipml.checks import Unanswered

    if dockerfile is None or not str(dockerfile).strip():
        raise Unanswered
    text = str(dockerfile)
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    if key not in _FACTS:
        _FACTS[key] = _inspect(text, key)
    return _FACTS[key]


def _inspect(text: str, key: str) -> dict:
    """Everything the questions look at, as plain data; never raises."""
    from shipml.containers import engine_available

    facts: dict[str, Any] = {"engine": True, "instructions": [list(i) for i in instructions(text)]}
    status = engine_available()
    if not status:
        return {**facts, "engine": False, "reason": status.reason}
    try:
        facts.update(_build_and_run(text, key))
    except Exception as exc:  # a build or run failure is an answer to report, not a crash
        facts["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    return facts


def _build_and_run(text: str, key: str) -> dict:
    import httpx

    from shipml.containers import build_image, docker_client, remove_image, run_container

    tag, retag = f"shipml-lab03-{key}:1", f"shipml-lab03-{key}:edited"
    facts: dict[str, Any] = {}
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="lab03-") as scratch:
        try:
            context = write_context(Path(scratch) / "context", text)
            build_image(context, tag, progress="none", client=client)
            facts["built"] = True
            config = client.images.get(tag).attrs["Config"]
            facts["user"] = config.get("User") or ""
            facts["exposed"] = sorted((config.get("ExposedPorts") or {}).keys())
            facts["healthcheck"] = (config.get("Healthcheck") or {}).get("Test") or []
            with run_container(tag, ports=[APP_PORT], client=client, labels={"io.shipml.lab": "lab03"}) as app:
                facts["ready_seconds"] = round(app.wait_until_ready("/health", timeout=30), 2)
                facts["uid"] = app.container.exec_run(["id", "-u"]).output.decode().strip()
                facts["answers"] = [
                    httpx.post(app.url("/predict"), json=row, timeout=10).json().get("fraud_probability")
                    for row in PROBE_ROWS
                ]
                if facts["healthcheck"] and facts["healthcheck"][0] != "NONE":
                    try:
                        app.wait_until_ready(timeout=40)
                        facts["health"] = "healthy"
                    except Exception as exc:
                        facts["health"] = f"not healthy: {str(exc)[:200]}"
            # Edit the code only, rebuild: which steps come from the layer cache now?
            write_context(Path(scratch) / "context", text, app=APP + "\n# an edit to the code\n")
            rebuilt = build_image(Path(scratch) / "context", retag, progress="none", client=client)
            facts["rebuild"] = _cached_steps(rebuilt.log)
        finally:
            remove_image(tag, client)
            remove_image(retag, client)
            client.close()
    return facts


def _cached_steps(log: list[str]) -> list[list]:
    """``[instruction, came_from_cache]`` for each step of a classic-builder log."""
    steps: list[list] = []
    for line in log:
        match = re.match(r"^Step \d+/\d+ : (.*)$", line)
        if match:
            steps.append([match.group(1), False])
        elif "Using cache" in line and steps:
            steps[-1][1] = True
    return steps


def collect(dockerfile: Any, ctx: Context) -> dict:
    return _facts(dockerfile)


# ---- evaluate: pure, on the plain facts ----------------------------------------------------------

def _usable(facts: dict) -> tuple[bool, str]:
    if not facts.get("engine", True):
        return False, ("no Docker engine answers here, so this check could not build your Dockerfile "
                       f"({facts.get('reason', '')}); start one and run the cell again")
    if "error" in facts and not facts.get("built"):
        return False, f"your Dockerfile did not build: {facts['error']}"
    if "error" in facts:
        return False, f"the image built but did not run and answer: {facts['error']}"
    return True, ""


def evaluate_runs(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, why = _usable(facts)
    if not ok:
        return False, why
    got = facts.get("answers") or []
    if len(got) != len(PROBE_ROWS) or any(not isinstance(g, int | float) or not 0 <= g <= 1 for g in got):
        return False, f"the container answered {got} for {len(PROBE_ROWS)} rows: expected a probability for each"
    return True, (f"it builds, starts in {facts.get('ready_seconds', 0):.1f}s and answers with probabilities "
                  "(grading compares them with the model's)")


def evaluate_port(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, why = _usable(facts)
    if not ok:
        return False, why
    exposed = facts.get("exposed", [])
    if exposed != [f"{APP_PORT}/tcp"]:
        return False, f"the image exposes {exposed or 'nothing'}, but app.py listens on {APP_PORT}"
    return True, f"EXPOSE {APP_PORT}: the documented port is the one the app listens on"


def evaluate_nonroot(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, why = _usable(facts)
    if not ok:
        return False, why
    if facts.get("user", "") in ("", "root", "0", "0:0") or facts.get("uid") == "0":
        return False, f"the app runs as root (USER {facts.get('user') or 'not set'}, uid {facts.get('uid')})"
    return True, f"the app runs as uid {facts.get('uid')} (USER {facts['user']})"


def evaluate_healthcheck(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, why = _usable(facts)
    if not ok:
        return False, why
    if not facts.get("healthcheck") or facts["healthcheck"][0] == "NONE":
        return False, "the image has no HEALTHCHECK, so Docker cannot tell a hung server from a working one"
    if facts.get("health") != "healthy":
        return False, f"the HEALTHCHECK never passed ({facts.get('health')}): does it query /health on {APP_PORT}?"
    return True, "Docker's HEALTHCHECK reports the container healthy"


def evaluate_layers(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, why = _usable(facts)
    if not ok:
        return False, why
    steps = facts.get("rebuild") or []
    install = [cached for instruction, cached in steps if "pip install" in instruction]
    if not install:
        return False, "no RUN pip install -r requirements.txt step: keep installing the requirements"
    if not all(install):
        return False, ("after an edit to app.py the pip install step ran again: copy requirements.txt and "
                       "install it before copying the code")
    return True, "an edit to app.py reuses the installed dependencies from the layer cache"


QUESTIONS = [
    Question("runs", 2, collect, evaluate_runs,
             "read the build error or the container's log in the message; print(BROKEN_DOCKERFILE) builds as "
             "it is, so compare what you changed", "The image builds, runs and answers"),
    Question("port", 1, collect, evaluate_port,
             "EXPOSE documents a port; which one does app.py open? (look for PORT in it)",
             "The exposed port matches"),
    Question("nonroot", 1, collect, evaluate_nonroot,
             "an image runs as root unless it says otherwise: a user has to exist in the image before an "
             "instruction can switch to it", "Not root"),
    Question("healthcheck", 1, collect, evaluate_healthcheck,
             "the slim image has Python but no curl; which endpoint of app.py says it is alive, and which "
             "Dockerfile instruction lets Docker ask it?", "A healthcheck"),
    Question("layers", 1, collect, evaluate_layers,
             "Docker reuses a layer until something it copied changes: which file does the install step need, "
             "and what changes more often?", "Layer order for the cache"),
]
