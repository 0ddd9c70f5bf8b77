"""The grading worker: runs ONE rebuilt notebook with papermill and reports, cell by cell, to its parent.

Started by :mod:`shipml.grading.runner` as ``python worker.py JOB.json`` inside its sandbox (a copy of
this file: ``shipml.grading`` itself is not there), it

1. makes itself non-dumpable (the kernel runs as the same uid: no ptrace, no /proc/<worker>/mem or fd)
   and applies the resource limits (``limits.py``, staged beside it) to itself; the kernel inherits them;
2. moves its stdout to a private file descriptor (not inherited by the kernel) and points fd 1 at fd 2
   (stderr, which the grader reads into a bounded log), so student code writing to "stdout" cannot
   forge the report;
3. runs the notebook with papermill (kernel ``shipml``, injected ``seed``/``answers_path``/``grading``,
   a per-cell timeout that interrupts the kernel, errors allowed so later questions still run, and
   outputs capped per cell);
4. after every cell, reads what was appended to the answers file and reports those lines *as
   produced by that cell*. The grader accepts an answer only from the check cell of its question,
   so records written from an answer cell, or a rewritten file, earn nothing and are flagged.

Each report is one JSON line: ``start`` (cell index), ``cell`` (status, error name, new answer
records), ``halt`` (the kernel died or exited: return code), ``notebook`` (the executed notebook, whose
file lives in the sandbox's job folder), ``done``. The worker never computes a
verdict: the grader does, in its own process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

try:
    from shipml.grading import limits
except ImportError:  # inside a sandbox: shipml.grading is absent, limits.py is staged beside this file
    import limits

GRADER_ENGINE = "shipml-grader"
MAX_RECORD_BYTES = 16_000_000  # per cell: plain data (lab01 exports 123,457 probabilities: 2.7 MB), not a data set
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024  # the executed notebook sent back (outputs are capped per cell)


class Channel:
    """JSON lines to the parent, on a descriptor the kernel does not inherit."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, **event: Any) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()


class AnswerTap:
    """Reads the answers file after each cell; notices lines that vanish or change afterwards."""

    def __init__(self, path: Path):
        self.path = path
        self.seen = b""
        self.rewritten = False

    def new_lines(self) -> tuple[list[str], list[str]]:
        """(new complete lines, problems) since the last call."""
        problems: list[str] = []
        try:
            data = self.path.read_bytes() if self.path.exists() and not self.path.is_symlink() else None
        except OSError as exc:
            data, problems = None, [f"answers file unreadable: {exc}"]
        if data is None:
            if self.seen:
                problems.append("answers file removed or replaced")
                self.rewritten = True
            return [], problems
        if not data.startswith(self.seen):
            problems.append("answers written earlier were changed")
            self.rewritten = True
            self.seen = data[: len(data) - len(data.split(b"\n")[-1])]
            return [], problems
        fresh = data[len(self.seen):]
        complete = fresh[: fresh.rfind(b"\n") + 1] if b"\n" in fresh else b""
        self.seen += complete
        if len(complete) > MAX_RECORD_BYTES:
            return [], [f"{len(complete):,} bytes of answers from one cell (limit {MAX_RECORD_BYTES:,})"]
        lines = [ln for ln in complete.decode("utf-8", "replace").split("\n") if ln.strip()]
        return lines, problems


OUTPUT_MESSAGES = ("stream", "display_data", "execute_result", "error", "update_display_data")


def _capped(msg: dict, budget: int) -> tuple[dict | None, int, int]:
    """One kernel message under the cell's output budget: (the message to keep, or None; budget left; bytes
    dropped). A print past the budget keeps its start (that is where a student looks); other outputs past
    it are dropped whole. Messages that are not output pass untouched."""
    if msg["msg_type"] not in OUTPUT_MESSAGES:
        return msg, budget, 0
    size = len(json.dumps(msg["content"]))
    if size <= budget:
        return msg, budget - size, 0
    if msg["msg_type"] != "stream" or budget <= 0:
        return None, budget, size
    keep = msg["content"]["text"][:budget]
    return {**msg, "content": {**msg["content"], "text": keep}}, 0, size - len(keep)


def _kernel_returncode(km) -> int | None:
    """The exit code of a kernel that died (the verdict says how it ended), or None when there is none to read."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return None
    try:
        return process.wait(timeout=5)
    except Exception:
        return None


def _client_class(channel: Channel, tap: AnswerTap, output_cap: int):
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.clientwrap import PapermillNotebookClient

    class GraderClient(PapermillNotebookClient):
        """Papermill's client, cell by cell, reporting to the parent and capping outputs."""

        def execute(self, **kwargs):
            self.reset_execution_trackers()
            with self.setup_kernel(**kwargs):
                self._run_cells()
            return self.nb

        def _run_cells(self) -> None:
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code":
                    continue
                self._budget, self._dropped, self._timed_out = output_cap, 0, False
                channel.send(event="start", index=index, id=cell.get("id", ""), t=time.time())
                halt = None
                try:
                    self.nb_man.cell_start(cell, index)
                    self.execute_cell(cell, index)
                except DeadKernelError as exc:
                    halt = {"kind": "died", "detail": str(exc)}
                except CellTimeoutError as exc:
                    halt = {"kind": "timeout", "detail": str(exc).splitlines()[0]}
                finally:
                    self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)
                reply = getattr(self, "_last_reply", None) or {}
                self._last_reply = None
                lines, problems = tap.new_lines()
                if self._dropped:
                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stderr", text=f"\n[grader: {self._dropped:,} more output bytes dropped]\n"))
                status = "timeout" if self._timed_out else reply.get("status", "none")
                channel.send(event="cell", index=index, id=cell.get("id", ""), status=status,
                             ename=reply.get("ename", ""), evalue=str(reply.get("evalue", ""))[:500],
                             records=lines, problems=problems, dropped=self._dropped)
                if halt:
                    halt["returncode"] = _kernel_returncode(self.km)
                    channel.send(event="halt", index=index, id=cell.get("id", ""), **halt)
                    return

        def on_executed(self, cell, cell_index, execute_reply):
            self._last_reply = (execute_reply or {}).get("content", {})

        async def _async_handle_timeout(self, timeout, cell=None):
            self._timed_out = True
            return await super()._async_handle_timeout(timeout, cell)

        def process_message(self, msg, cell, cell_index):
            msg, self._budget, dropped = _capped(msg, self._budget)
            self._dropped += dropped
            return None if msg is None else super().process_message(msg, cell, cell_index)

    return GraderClient


def _register_engine(client_class) -> None:
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class GraderEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            client = client_class(nb_man, **merge_kwargs(
                kwargs, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                log=logging.getLogger("papermill"), log_output=False))
            client.on_cell_executed = client.on_executed
            return client.execute()

    papermill_engines.register(GRADER_ENGINE, GraderEngine)


def run(job: dict[str, Any], channel: Channel) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    applied = limits.apply(limits.Limits(**job["limits"]))
    channel.send(event="limits", limits={k: list(v) for k, v in applied.items()})
    tap = AnswerTap(Path(job["answers"]))
    _register_engine(_client_class(channel, tap, job["output_cap"]))
    try:
        papermill.execute_notebook(
            job["input"], job["output"], parameters=job["parameters"], engine_name=GRADER_ENGINE,
            kernel_name=job["kernel"], progress_bar=False, cwd=job["cwd"], start_timeout=120,
            execution_timeout=job["cell_timeout"], allow_errors=True, interrupt_on_timeout=True,
        )
    except PapermillExecutionError:
        pass  # a cell raised: expected (errors are allowed, and reported cell by cell)
    except Exception as exc:  # papermill/kernel start problems: report, never hide
        channel.send(event="halt", index=-1, kind="grader", detail=f"{type(exc).__name__}: {exc}"[:500],
                     returncode=None)
    notebook = Path(job["output"])
    if notebook.is_file() and not notebook.is_symlink() and notebook.stat().st_size < MAX_NOTEBOOK_BYTES:
        channel.send(event="notebook", text=notebook.read_text(errors="replace"))
    channel.send(event="done")


def not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: processes of the same uid (the kernel) cannot ptrace this one or open its fds."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    not_dumpable()
    channel = Channel(os.dup(1))  # os.dup: not inheritable, so the kernel never holds it
    os.dup2(2, 1)
    for folder in job.get("mkdirs", []):
        os.makedirs(folder, exist_ok=True)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run(job, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
