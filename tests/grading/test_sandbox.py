"""The worker under real limits: the kernel still starts; the wall clock kills every process it made."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import nbformat
import psutil
import pytest
from shipml.grading.limits import Limits
from shipml.grading.sandbox import run_worker


def _job(tmp_path, *sources, cell_timeout=60, limits=Limits()):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "shipml", "display_name": "Python (shipml)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, tmp_path / "in.ipynb")
    (tmp_path / "scratch").mkdir()
    return {"input": str(tmp_path / "in.ipynb"), "output": str(tmp_path / "out.ipynb"),
            "answers": str(tmp_path / "answers.jsonl"), "cwd": str(tmp_path / "scratch"),
            "log": str(tmp_path / "worker.log"), "kernel": "shipml", "cell_timeout": cell_timeout,
            "output_cap": 10_000, "limits": limits.to_dict(), "parameters": {}}


@pytest.mark.slow
def test_kernel_runs_sklearn_under_the_default_limits(tmp_path):
    code = textwrap.dedent("""
        import resource, threading
        from shipml.data import make_transactions
        from shipml.models import train
        result = train(make_transactions(3_000, seed=0), "hgb", seed=0)
        print(resource.getrlimit(resource.RLIMIT_AS)[0], threading.active_count())
    """)
    run = run_worker(_job(tmp_path, code, "print('x' * 50_000)"), tmp_path, wall_seconds=240)
    cells = [e for e in run.events if e["event"] == "cell"]
    assert [c["status"] for c in cells] == ["ok", "ok"], (tmp_path / "worker.log").read_text()[-2000:]
    assert cells[1]["dropped"] > 0  # output beyond the cap is dropped, not kept in memory
    limits = next(e for e in run.events if e["event"] == "limits")["limits"]
    assert limits["RLIMIT_AS"][0] == Limits().memory_mib * 1024 * 1024
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert str(Limits().memory_mib * 1024 * 1024) in out.cells[0].outputs[0]["text"]


@pytest.mark.slow
def test_wall_clock_kills_kernel_and_escaped_children(tmp_path):
    pids = tmp_path / "pids"
    code = textwrap.dedent(f"""
        import os, signal, subprocess
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """)
    started = time.monotonic()
    run = run_worker(_job(tmp_path, code, cell_timeout=2), tmp_path, wall_seconds=40)
    assert run.wall_timeout and time.monotonic() - started < 100
    assert run.killed_groups >= 2  # the worker's session and the kernel's (and the child's)
    for pid in map(int, pids.read_text().split()):
        time.sleep(0.2)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


PROBE = """
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
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert "memory: refused" in done.stdout, done.stderr
    started = int(done.stdout.split("threads: ")[1])
    assert started < 200
