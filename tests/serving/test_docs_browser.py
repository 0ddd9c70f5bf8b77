"""``/docs`` renders in a real browser with no internet: Debian's chromium driven by playwright.

Every request the page makes that is not to the server on 127.0.0.1 is aborted and recorded, so a
CDN reference would leave the page blank and fail the test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (.ci/setup.d/10-chromium.sh)")
def test_swagger_ui_renders_every_operation_offline(server, tmp_path):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()

            def only_local(route):
                if route.request.url.startswith(server.url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{server.url}/docs", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=20_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            title = page.locator(".info .title").inner_text()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
            # Open /predict and check the generated schema is shown
            page.locator(".opblock-post .opblock-summary-path", has_text="/predict").first.click()
            page.wait_for_selector("text=merchant_category", timeout=10_000)
        finally:
            browser.close()
    assert outside == [], f"the docs page reached outside the server: {outside}"
    assert "shipml model server" in title
    flat = [x.replace("\u200b", "") for x in paths]
    documented = set(httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"])
    assert documented <= set(flat), f"{sorted(documented - set(flat))} not shown; Swagger UI shows {flat}"
    for path in ("/predict", "/predict/batch", "/metrics"):
        assert path in flat, f"{path} not shown; Swagger UI shows {flat}"
    # the TF Serving and v2 prediction routes are documented once per served model, with its exact body
    assert any(x.endswith(":predict") for x in flat) and any(x.endswith("/infer") for x in flat), flat
    assert shutil.disk_usage(tmp_path).free and (tmp_path / "docs.png").stat().st_size > 10_000
