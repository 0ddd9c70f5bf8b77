"""The files the workers of one server share their rollouts through (no server: processes and a folder)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from shipml.serving.rollout.shared import SharedState


def _claim(folder: str, barrier, won) -> None:
    """One worker's end of a rollout: it ends it only if it still finds it running, under the lock."""
    shared = SharedState(Path(folder))
    barrier.wait()
    with shared.update() as doc:
        spec = doc["models"]["m"]["rollout"]
        time.sleep(0.1)  # deciding takes a while: without the lock all four would find it running
        if spec["state"] == "running":
            spec["state"] = "aborted"
            spec["reason"] = f"by {os.getpid()}"
            with won.get_lock():
                won.value += 1


def test_of_four_processes_racing_to_end_one_rollout_exactly_one_does(tmp_path):
    shared = SharedState(tmp_path)
    with shared.update() as doc:
        doc["models"]["m"] = {"rollout": {"id": "r1", "state": "running", "reason": None}, "history": []}
    ctx = multiprocessing.get_context("fork")
    barrier, won = ctx.Barrier(4), ctx.Value("i", 0)
    procs = [ctx.Process(target=_claim, args=(str(tmp_path), barrier, won)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    assert [p.exitcode for p in procs] == [0] * 4
    assert won.value == 1
    state = shared.read()
    assert state["models"]["m"]["rollout"]["state"] == "aborted" and state["generation"] == 2


def test_a_change_is_seen_once_and_an_unchanged_update_writes_nothing(tmp_path):
    writer, reader = SharedState(tmp_path), SharedState(tmp_path)
    assert reader.changed() is None  # nothing written yet
    with writer.update() as doc:
        doc["models"]["m"] = {"rollout": None, "history": []}
    assert reader.changed()["generation"] == 1
    assert reader.changed() is None  # one stat, nothing new
    with writer.update():
        pass
    assert reader.changed() is None and writer.read()["generation"] == 1


def test_counts_are_the_other_workers_and_lagging_names_who_has_not_applied(tmp_path):
    shared = SharedState(tmp_path)
    shared.publish("r1", {"n": 1})  # this process's own numbers are not "the others'"
    (tmp_path / "counts" / "r1.1.json").write_text('{"n": 7}')  # pid 1 (init: alive)
    (tmp_path / "counts" / "r2.1.json").write_text('{"n": 9}')  # another rollout
    assert shared.counts("r1") == {1: {"n": 7}}
    shared.applied(3)
    (tmp_path / "applied" / "1").write_text("2")
    (tmp_path / "applied" / "999999999").write_text("0")  # a worker that is gone is not waited for
    assert shared.lagging(3) == [1] and shared.lagging(2) == []
    shared.forget("r1")
    assert shared.counts("r1") == {} and (tmp_path / "counts" / "r2.1.json").exists()
