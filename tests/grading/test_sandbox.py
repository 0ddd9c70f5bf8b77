"""The worker inside each sandbox: the kernel starts under the limits, the wall clock and the end of a
notebook kill every process it made, what it may read and write is only its own, and a memory bomb,
a segfault or a timeout still give their statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from shipml.errors import ShipmlError
from shipml.grading import kit
from shipml.grading.limits import Limits
from shipml.grading.runner import BoundedLog, run_worker
from shipml.grading.sandbox import UID_BASE, Box, bwrap_unavailable, choose, docker_unavailable, etc_files

KINDS = ["none", "bwrap", "docker"]


@pytest.fixture(params=KINDS)
def box(request, tmp_path_factory):
    kind = request.param
    why = {"bwrap": bwrap_unavailable, "docker": docker_unavailable}.get(kind, lambda: None)()
    if why:
        pytest.skip(why)
    staging = tmp_path_factory.mktemp("kit")
    staged_kit, grader = kit.stage(staging)
    return Box(kind, staged_kit, grader, etc_files(staging), UID_BASE + 40, job_mib=64)


def _job(tmp_path, *sources, cell_timeout=60, limits=Limits()):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "shipml", "display_name": "Python (shipml)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, tmp_path / "in.ipynb")
    return {"input": str(tmp_path / "in.ipynb"), "output": str(tmp_path / "out.ipynb"),
            "answers": str(tmp_path / "answers.jsonl"), "cwd": str(tmp_path / "job" / "scratch"), "kernel": "shipml",
            "cell_timeout": cell_timeout, "output_cap": 10_000, "limits": limits.to_dict(), "parameters": {}}


def _cells(run):
    """The reports of the notebook's own cells (not papermill's injected parameters)."""
    injected = {c.id for c in nbformat.reads(run.notebook, as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])} if run.notebook else set()
    return [e for e in run.events if e["event"] == "cell" and e.get("id") not in injected]


def _outputs(run) -> list[str]:
    nb = nbformat.reads(run.notebook, as_version=4)
    return ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells
            if "injected-parameters" not in c.metadata.get("tags", [])]


def _left(uid: int) -> list[int]:
    return [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]


@pytest.mark.slow
def test_kernel_runs_sklearn_under_the_default_limits(tmp_path, box):
    code = textwrap.dedent("""
        import resource, threading
        from shipml.data import make_transactions
        from shipml.models import train
        result = train(make_transactions(3_000, seed=0), "hgb", seed=0)
        print(resource.getrlimit(resource.RLIMIT_AS)[0], threading.active_count())
    """)
    run = run_worker(_job(tmp_path, code, "print('x' * 50_000)"), tmp_path / "job", 240, box)
    assert [c["status"] for c in _cells(run)] == ["ok", "ok"], (tmp_path / "job" / "worker.log").read_text()[-2000:]
    assert _cells(run)[1]["dropped"] > 0  # output beyond the cap is dropped, not kept in memory
    limits = next(e for e in run.events if e["event"] == "limits")["limits"]
    assert limits["RLIMIT_AS"][0] == Limits().memory_mib * 1024 * 1024
    assert str(Limits().memory_mib * 1024 * 1024) in _outputs(run)[0]


PROBE = """
import glob, json, os, socket, pathlib, shipml
out = {"uid": os.getuid()}
out["grading_importable"] = True
try:
    import shipml.grading
except ImportError:
    out["grading_importable"] = False
pkg = pathlib.Path(shipml.__file__).parent
out["grading_readable"] = (pkg / "grading").exists()
out["checkout"] = (pkg.parent.parent / "solutions").exists() or (pkg.parent.parent / "labs").exists()
out["others"] = sorted(p.split("/")[1] for p in glob.glob("/*"))
out["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
out["interfaces"] = [n for _, n in socket.if_nameindex()]
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    out["network"] = True
except OSError:
    out["network"] = False
try:
    with open("big", "wb") as f:
        for _ in range(200):
            f.write(b"0" * 2**20)
    out["wrote_mib"] = 200
except OSError as exc:
    out["wrote_mib"] = os.path.getsize("big") // 2**20
    out["write_error"] = exc.errno
for name in ("/usr/x", "/etc/x", str(pkg / "x.py")):
    try:
        open(name, "w")
        out[name] = "writable"
    except OSError:
        pass
print(json.dumps(out))
"""


@pytest.mark.slow
def test_what_a_submission_can_see_and_write(tmp_path, box):
    if box.kind == "none":
        pytest.skip("--sandbox none is unsafe by design")
    run = run_worker(_job(tmp_path, PROBE), tmp_path / "job", 240, box)
    seen = json.loads(_outputs(run)[0].strip().splitlines()[-1])
    assert seen["uid"] == box.uid != 0
    assert not seen["grading_importable"] and not seen["grading_readable"] and not seen["checkout"]
    assert not seen["network"] and seen["interfaces"] == ["lo"]
    assert seen["wrote_mib"] < 70 and seen["write_error"] == 28  # ENOSPC at the 64 MiB cap
    assert not [k for k, v in seen.items() if v == "writable"]
    assert seen["processes"] < 20  # its own PID namespace: the grader's processes are not there
    runtime = {Path(p).resolve().parts[1] for p in (sys.prefix, sys.base_prefix)}  # the venv's top folder, e.g. /check
    assert set(seen["others"]) <= {"bin", "dev", "etc", "grader", "input", "job", "lib", "lib64", "out", "proc", "root",
                                   "sbin", "tmp", "usr", "home", "sys", "var", "opt", "mnt", "srv",
                                   "media", "run", "boot"} | runtime


@pytest.mark.slow
def test_a_daemon_dies_with_its_notebook(tmp_path, box):
    if box.kind == "none":
        pytest.skip("without a PID namespace a daemon in its own session is killed only by the wall clock")
    code = textwrap.dedent("""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    """)
    run = run_worker(_job(tmp_path, code), tmp_path / "job", 240, box)
    assert [c["status"] for c in _cells(run)] == ["ok"]
    deadline = time.monotonic() + 15
    while _left(box.uid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _left(box.uid)


@pytest.mark.slow
def test_memory_bomb_segfault_and_timeout_inside(tmp_path, box):
    cells = ["hog = [bytearray(10**8) for _ in range(10**6)]", "import time\ntime.sleep(120)",
             "import ctypes\nctypes.string_at(0)"]
    run = run_worker(_job(tmp_path, *cells, cell_timeout=40), tmp_path / "job", 300, box)
    got = _cells(run)
    assert got[0]["ename"] == "MemoryError" and got[1]["status"] == "timeout"
    halt = next(e for e in run.events if e["event"] == "halt")
    assert halt["kind"] == "died" and halt["returncode"] == -11


@pytest.mark.slow
def test_wall_clock_kills_kernel_and_escaped_children(tmp_path, box):
    code = textwrap.dedent("""
        import signal, subprocess
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """)
    before = {p.pid for p in psutil.process_iter()}
    started = time.monotonic()
    run = run_worker(_job(tmp_path, code, cell_timeout=2), tmp_path / "job", 20, box)
    assert run.wall_timeout and time.monotonic() - started < 100
    time.sleep(1)
    new = [p for p in psutil.process_iter(["cmdline", "status"]) if p.pid not in before
           and (p.info["cmdline"] or [])[:2] == ["sleep", "600"] and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert not new and not _left(box.uid)


def test_worker_stderr_is_kept_and_bounded():
    log = BoundedLog()
    log.add(b"start\n" + b"x" * 200_000 + b"\nlast words\n")
    text = log.text()
    assert text.startswith("start") and "bytes dropped" in text and len(text) < 70_000
    assert log.last_line() == "last words"


def test_auto_never_silently_falls_back_to_none(monkeypatch):
    from shipml.grading import sandbox

    monkeypatch.setattr(sandbox, "docker_unavailable", lambda: "no engine")
    monkeypatch.setattr(sandbox, "bwrap_unavailable", lambda: "no bwrap")
    with pytest.raises(ShipmlError, match="--sandbox none"):
        choose("auto")
    assert choose("none") == "none"


PROBE_LIMITS = """
import os, sys, threading, time
from shipml.grading.limits import Limits, apply
if os.getuid() == 0:
    os.setgid(65534); os.setuid(65534)  # root ignores RLIMIT_NPROC: probe as nobody
apply(Limits(memory_mib=512, nproc=20))
try:
    bytearray(1024 ** 3)
    print("memory: allocated")
except MemoryError:
    print("memory: refused")
started = 0
try:
    for _ in range(200):
        threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        started += 1
except RuntimeError:
    pass
print(f"threads: {started}")
"""


def test_memory_and_process_limits_bite(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE_LIMITS], capture_output=True, text=True, timeout=60,
                          env=env, cwd=tmp_path)
    assert "memory: refused" in done.stdout, done.stderr
    started = int(done.stdout.split("threads: ")[1])
    assert started < 200
