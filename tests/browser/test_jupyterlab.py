"""The course as a student meets it: `make lab`, then every notebook and every lab run from JupyterLab's Run
menu in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

What it does, honestly:

* A scratch copy of the tracked files (a fresh clone, without .git) with the kit's ``.venv`` linked in,
  and **`make lab` run in it** exactly as a student types it, plus
  ``LAB_FLAGS="--no-browser --port=<free> --IdentityProvider.token=<random> --ServerApp.ip=127.0.0.1"``.
  As root (CI) that exercises the ``--allow-root`` path. Autosave writes outputs into the copy only.
* The notebooks in ``notebooks/`` of the copy have **the CI sizes of tests/notebook_params.yml injected**
  (papermill ``--prepare-only``, the same parameters nbval uses), so the whole run stays at a few minutes;
  ``SHIPML_BROWSER_DEFAULT_SIZES=1`` runs them at their real sizes. Labs run as generated (unsolved).
* Each file is opened by double-clicking through the file browser, run with Run ▸ Run All Cells, and waited
  for until no cell is queued or running (``[*]``) and the kernel is idle. Then it is saved and the saved
  outputs are read: any ``error`` output, any ``stderr`` stream not in :data:`EXPECTED_STDERR`, a kernel
  picker dialog, or a cell that never finishes fails the test. A screenshot of each lands in
  ``build/browser/`` (a CI artifact).
* A notebook whose metadata says ``shipml.requires`` docker/cluster runs when ``shipml doctor`` says the
  machine can, else it is skipped with the doctor's reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]
SHOTS = ROOT / "build" / "browser"
NOTEBOOK_TIMEOUT = float(os.environ.get("SHIPML_BROWSER_TIMEOUT", "900"))  # seconds for one Run All

# stderr a student may see that is not a problem, each with why. Anything else on stderr fails the test.
# (pattern, reason)
EXPECTED_STDERR: list[tuple[str, str]] = [
    (r"^verify: .*edge-tampered: SHA256SUMS changed after the bundle was signed",
     "notebook 08 hands the device a tampered bundle on purpose; the device logs the refusal as a warning"),
    (r"^now serving fraud-lr-v2-[0-9a-f]+ on probation \(",
     "notebook 08 swaps a faulty update in live; the device logs the start of its probation"),
    (r"^fraud-lr v2 failed a request: returned non-finite probabilities",
     "the faulty update's NaN answers, each logged (the previous model answers the client)"),
    (r"^auto_rollback: fraud-lr-v2-[0-9a-f]+ failed on live traffic during probation: ",
     "the device rolls the faulty update back by itself and logs why"),
]

FILES = [f"notebooks/{p.name}" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))] + \
        [f"labs/{p.name}" for p in sorted((ROOT / "labs").glob("*.ipynb"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_checkout(dest: Path) -> None:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")  # installed already: `make lab`'s install step has nothing to do


def _inject_ci_sizes(clone: Path) -> dict[str, dict]:
    import papermill

    params = yaml.safe_load((ROOT / "tests" / "notebook_params.yml").read_text()) or {}
    injected = {}
    for nb in sorted((clone / "notebooks").glob("*.ipynb")):
        if params.get(nb.name):
            papermill.execute_notebook(str(nb), str(nb), parameters=params[nb.name], prepare_only=True,
                                       kernel_name="shipml", progress_bar=False)
            injected[nb.name] = params[nb.name]
    return injected


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab` in a scratch copy; yields (url, token, clone, injected parameters)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (.ci/setup.d/10-chromium.sh)")
    clone = tmp_path_factory.mktemp("lab") / "shipml"
    _copy_checkout(clone)
    injected = {} if os.environ.get("SHIPML_BROWSER_DEFAULT_SIZES") == "1" else _inject_ci_sizes(clone)
    port, token = _free_port(), secrets.token_hex(16)
    flags = f"--no-browser --port={port} --IdentityProvider.token={token} --ServerApp.ip=127.0.0.1"
    log = (tmp_path_factory.getbasetemp() / "make-lab.log").open("w+")
    # not the test run's JUPYTER_*, nor SHIPML_ANSWERS_DIR: the unsolved labs run here must not overwrite the
    # answers the solutions exported under nbval (tests/test_labs.py grades those)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "VIRTUAL_ENV", "SHIPML_ANSWERS"))}
    server = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_FLAGS={flags}"], cwd=clone, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"`make lab` exited with {server.returncode}:\n{log.read()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"JupyterLab did not answer within 120 s:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url, token, clone, injected
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # jupyter shuts its kernels down on SIGTERM
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    url, token, _, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(f"{url}/lab?token={token}")
            page.wait_for_selector(".jp-DirListing-item", timeout=120_000)
            yield page
        finally:
            browser.close()


def _item(page, name: str):
    return page.locator(".jp-DirListing-itemText").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).first


def _open_from_file_browser(page, relative: str) -> None:
    """Home in the breadcrumbs, double-click the folder, double-click the notebook: what a student does."""
    folder, name = relative.split("/")
    page.locator(".jp-BreadCrumbs-home").first.click()
    _item(page, folder).dblclick(timeout=30_000)
    _item(page, name).dblclick(timeout=30_000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.wait_for(timeout=60_000)


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}")).first.click()


def _kernel_picker(page) -> bool:
    dialog = page.locator(".jp-Dialog")
    return dialog.count() > 0 and "kernel" in dialog.first.inner_text().lower()


def _wait_until_done(page, timeout: float) -> str | None:
    """None when every cell ran and the kernel is idle, else what is still running."""
    deadline = time.monotonic() + timeout
    time.sleep(1.0)
    while time.monotonic() < deadline:
        running = page.evaluate("""() => {
            const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!nb) return 'no notebook';
            const busy = [...nb.querySelectorAll('.jp-InputPrompt')].filter(p => p.textContent.includes('*'));
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const state = status && status.getAttribute('data-status');
            const idle = !state || state === 'idle';
            return busy.length || !idle ? `${busy.length} cell(s) queued or running` : '';
        }""")
        if not running and page.get_by_text(re.compile(r"\| Idle")).count():
            return None
        time.sleep(1.0)
    return running


def _problems(saved: Path) -> list[str]:
    """error outputs and unexpected stderr of the saved notebook."""
    problems = []
    nb = json.loads(saved.read_text())
    for number, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        if cell.get("execution_count") is None and cell["source"]:
            problems.append(f"code cell {number}: never ran")
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"code cell {number}: {out['ename']}: {out['evalue']}")
            elif out["output_type"] == "stream" and out["name"] == "stderr":
                text = "".join(out["text"])
                for line in filter(str.strip, text.splitlines()):
                    if not any(re.search(pattern, line) for pattern, _ in EXPECTED_STDERR):
                        problems.append(f"code cell {number}: unexpected stderr: {line[:300]}")
    return problems


def _requirement(path: Path) -> str | None:
    from shipml.doctor import unmet_requirement

    return unmet_requirement(path)


@pytest.mark.timeout(int(NOTEBOOK_TIMEOUT) + 300)  # above pyproject's 600 s: Run All has its own limit
@pytest.mark.parametrize("relative", FILES)
def test_run_all_from_the_run_menu(lab, page, relative):
    clone, injected = lab[2], lab[3]
    reason = _requirement(clone / relative)
    if reason:
        pytest.skip(f"{relative}: {reason} (shipml doctor)")
    url, token, _, _ = lab
    page.goto(f"{url}/lab?reset&token={token}")  # a fresh workspace: no tab or dialog left from the last file
    page.wait_for_selector(".jp-DirListing-item", timeout=120_000)
    started = time.monotonic()
    _open_from_file_browser(page, relative)
    time.sleep(1.0)
    if _kernel_picker(page):
        pytest.fail(f"{relative}: JupyterLab asked for a kernel: {page.locator('.jp-Dialog').first.inner_text()}")
    # the kernel is up when the status bar says so (Run All before that would ask for a kernel)
    page.get_by_text(re.compile(r"Python \(shipml\) \| Idle")).first.wait_for(timeout=180_000)
    if _kernel_picker(page):
        pytest.fail(f"{relative}: JupyterLab asked for a kernel: {page.locator('.jp-Dialog').first.inner_text()}")
    _menu(page, "Run", "Run All Cells")
    still = _wait_until_done(page, NOTEBOOK_TIMEOUT)
    seconds = time.monotonic() - started
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (Path(relative).stem + ".png")))
    page.keyboard.press("Control+s")
    time.sleep(2.0)
    dialogs = []
    for _ in range(3):  # a dialog here is unexpected: record what it said, then dismiss it
        if not page.locator(".jp-Dialog").count():
            break
        dialogs.append(page.locator(".jp-Dialog").first.inner_text()[:300])
        page.keyboard.press("Escape")
        time.sleep(0.5)
    for kernel in httpx.get(f"{url}/api/kernels", params={"token": token}, timeout=10).json():
        httpx.delete(f"{url}/api/kernels/{kernel['id']}", params={"token": token}, timeout=30)
    print(f"{relative}: Run All {seconds:.1f} s" + (f" with CI sizes {injected[Path(relative).name]}"
                                                   if Path(relative).name in injected else ""))
    assert still is None, f"{relative}: not finished after {NOTEBOOK_TIMEOUT:.0f} s ({still})"
    problems = _problems(clone / relative) + [f"dialog after saving: {text}" for text in dialogs]
    assert problems == [], f"{relative}:\n" + "\n".join(problems)
