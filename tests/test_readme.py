"""Every fenced shell block of README.md runs as written, from the repository root, relative paths and all.

The blocks run in order (later blocks use what earlier ones made: data, then models, then scores) with
``bash -euo pipefail`` in ONE scratch copy of the repository's tracked files, so nothing they write lands
in your checkout and absolute temp paths can't hide a relative-path bug. The venv's ``bin/`` is on PATH,
as after ``source .venv/bin/activate`` (what the README assumes when it says ``shipml``).

An HTML comment right before a block tells the test how to treat it (shown to nobody reading the page):

    <!-- readme-test: env ROWS=2000 -->          variables for the block (tiny sizes: write ${ROWS:-1000000})
    <!-- readme-test: env SHIPML_API_PORT={port} -->   {port} becomes a free loopback port
    <!-- readme-test: serve 8000 /ready -->      the first command is a server on that port: it runs in the
                                                 background (the port replaced by a free one); once the
                                                 port (and GET /ready, if given) answers, the rest of the
                                                 block runs; then the server is stopped
    <!-- readme-test: needs docker -->           skipped with `shipml doctor`'s reason where that is missing
                                                 (docker, compose, kind, cluster)
    <!-- readme-test: after docker compose down -->   a command run after the block, even when it failed
    <!-- readme-test: skip REASON -->            not run, with the reason (e.g. `make test` is this suite)
    <!-- readme-test: xfail REASON -->           known broken, waiting for its owner's fix (strict: passing fails)

Several directives go in one comment, separated by ``;``. A block without a comment must just work.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELLS = {"bash", "sh", "shell", "console"}
BLOCK_TIMEOUT = int(os.environ.get("SHIPML_README_BLOCK_TIMEOUT", "900"))  # generous: a busy CI machine


@dataclass
class Block:
    line: int
    code: str
    section: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        first = next((s for s in self.code.splitlines() if s.strip() and not s.startswith("#")), "")
        return f"L{self.line} {first[:40]}"


def parse_blocks(text: str) -> list[Block]:
    """Fenced shell blocks with their section heading and the directives of the comment before them."""
    blocks, section, pending, lines = [], "", {}, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        marker = re.fullmatch(r"\s*<!--\s*readme-test:(.*?)-->\s*", line)
        if marker:
            pending = {}
            for part in marker.group(1).split(";"):
                key, _, value = part.strip().partition(" ")
                if key:
                    pending[key] = value.strip()
            i += 1
            continue
        fence = re.fullmatch(r"```(\w*)\s*", line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) in SHELLS:
                blocks.append(Block(i + 1, "\n".join(lines[i + 1:end]) + "\n", section, pending))
            pending, i = {}, end + 1
            continue
        if line.strip():
            pending = {} if not line.lstrip().startswith("<!--") else pending
        i += 1
    return blocks


BLOCKS = parse_blocks(README.read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A copy of the tracked files (what a fresh clone has), where every block runs."""
    copy = tmp_path_factory.mktemp("readme") / "shipml"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def _env(block: Block, copy: Path) -> dict[str, str]:
    venv_bin = ROOT / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "VIRTUAL_ENV": str(ROOT / ".venv")}
    for assignment in block.directives.get("env", "").split():
        key, _, value = assignment.partition("=")
        env[key] = value.replace("{port}", str(_free_port()))
    return env


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, ready_path: str = "",
                   timeout: float = 90) -> None:
    """Until the port answers (and ``ready_path`` says 200): what a person waits for before the next line."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before listening on {port}:\n"
                                 f"{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                if not ready_path:
                    return
                try:
                    if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
        time.sleep(0.2)
    raise AssertionError(f"nothing ready on {port}{ready_path} within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def _run(code: str, copy: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT)


def _skip_reason(block: Block) -> str | None:
    if "skip" in block.directives:
        return block.directives["skip"] or "marked skip in README.md"
    for need in block.directives.get("needs", "").split():
        if need == "compose":
            if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
                return "needs Docker Compose v2 (`docker compose`; CI builds it in .ci/setup.d/25-compose-v2.sh)"
            continue
        if need == "kind":
            from shipml.cluster.session import kind_reachable

            if not kind_reachable():
                return "needs a kind cluster named shipml (`shipml cluster create`); none answers here"
            continue
        from shipml.doctor import REQUIREMENTS

        check = REQUIREMENTS[need]()
        if not check.ok:
            return f"needs {need}: {check.detail}"
    return None


def test_readme_has_shell_blocks_and_every_directive_is_known():
    assert len(BLOCKS) >= 5
    known = {"env", "serve", "needs", "after", "skip", "xfail"}
    for block in BLOCKS:
        assert set(block.directives) <= known, f"README.md line {block.line}: unknown {set(block.directives) - known}"


def test_parse_blocks_reads_directives_and_ignores_python():
    text = ("# A\n<!-- readme-test: env ROWS=5; needs docker -->\n```bash\necho $ROWS\n```\n"
            "```python\nprint(1)\n```\n```bash\nls\n```\n")
    first, second = parse_blocks(text)
    assert first.directives == {"env": "ROWS=5", "needs": "docker"} and first.code == "echo $ROWS\n"
    assert second.directives == {} and second.section == "A"


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, scratch: Path, request):
    reason = _skip_reason(block)
    if reason:
        pytest.skip(f"README.md line {block.line} ({block.section}): {reason}")
    if "xfail" in block.directives:
        request.node.add_marker(pytest.mark.xfail(reason=block.directives["xfail"], strict=True))
    env = _env(block, scratch)
    code, server = block.code, None
    try:
        if "serve" in block.directives:
            written_port, _, ready_path = block.directives["serve"].partition(" ")
            port = str(_free_port())
            code = code.replace(written_port, port)
            first, _, code = code.partition("\n")
            while first.rstrip().endswith("\\"):
                more, _, code = code.partition("\n")
                first = first.rstrip()[:-1] + " " + more
            log = scratch.parent / f"server-L{block.line}.log"
            with log.open("w") as sink:
                server = subprocess.Popen(["bash", "-c", f"exec {first}"], cwd=scratch, env=env,
                                          start_new_session=True, stdout=sink, stderr=subprocess.STDOUT)
            _wait_for_port(int(port), server, log, ready_path)
        done = _run(code, scratch, env)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        if "after" in block.directives:
            _run(block.directives["after"], scratch, env)
    assert done.returncode == 0, (f"README.md line {block.line} ({block.section}) failed with {done.returncode}:\n"
                                  f"{block.code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
