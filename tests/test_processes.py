"""stop_process: SIGTERM first, then the whole process group."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil
from shipml.processes import stop_process
from shipml.waiting import wait_until


def test_a_clean_process_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    started = time.monotonic()
    assert stop_process(proc, timeout=10) == -15
    assert time.monotonic() - started < 10


def test_a_process_ignoring_sigterm_is_killed_with_its_children():
    code = textwrap.dedent("""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", stubborn])
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(proc.stdout.readline())
    assert stop_process(proc, timeout=1) == -9

    def gone() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, 5, what="the server's child exiting")
