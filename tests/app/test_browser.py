"""The dashboard in a real browser: Debian's chromium driven by Playwright, against `openasm serve`'s server on a
small demo run. Loads every page, moves a what-if slider and checks the recomputed final score against the
library, runs a simulation, and saves screenshots to test-artifacts/. Also: the server bound to 127.0.0.1 is not
reachable on another local address."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from openasm.app.pdf import default_subject
from openasm.app.server import LOOPBACK, PAGES, create_app
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for

CHROMIUM = Path("/usr/bin/chromium")
# Launch flags for a closed network: no first-run, sync, component or background traffic, no GPU, no QUIC.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_output):
    port = _free_port()
    config = uvicorn.Config(create_app(demo_output / "run"), host=LOOPBACK, port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    assert instance.started, "the dashboard server did not start"
    yield f"http://{LOOPBACK}:{port}", port
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is missing: .ci/run installs it (apt-get install chromium)"
    profile = tmp_path_factory.mktemp("chromium-profile")  # pytest's temp folder: old ones are pruned
    with sync_playwright() as playwright:
        # A fresh profile folder per run (Playwright passes it to chromium as --user-data-dir).
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def _other_local_addresses() -> list[str]:
    """Addresses of this machine other than 127.0.0.1: another loopback address and the outward interface."""
    addresses = ["127.0.0.2"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent by a UDP connect
            outward = probe.getsockname()[0]
        if outward and not outward.startswith("127."):
            addresses.append(outward)
    except OSError:
        pass
    return addresses


def test_server_is_not_reachable_on_another_local_address(server):
    _, port = server
    with socket.create_connection((LOOPBACK, port), timeout=2):
        pass
    for address in _other_local_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def test_dashboard_in_chromium(server, browser, demo_output):
    base, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(base) and not request.url.startswith("data:") else None)
    for name, title in PAGES:
        response = page.goto(f"{base}/{name}")
        assert response is not None and response.ok, name
        assert page.locator("#suppression-note").is_visible()
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)

    run = load_run_tables(demo_output / "run")
    decision = decision_for(run, **default_subject(run))
    page.goto(f"{base}/whatif")
    slider = page.locator("input[type=range][name$='.rate']").first
    name = slider.get_attribute("name")
    lever = decision.levers[name]
    value = lever.high if lever.favourable > 0 else lever.low
    with page.expect_response(lambda r: r.url.endswith("/api/whatif")):
        slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
                        str(value))
    page.wait_for_function("document.getElementById('levers').dataset.computed !== undefined")
    shown = float(page.locator("#wi-final-score").inner_text())
    expected = float(decision.evaluate({name: float(slider.input_value())}).final_score[0, 0])
    assert shown == pytest.approx(expected, abs=0.005)
    page.screenshot(path=str(ARTIFACTS / "dashboard-whatif-moved.png"), full_page=True)

    page.goto(f"{base}/uncertainty")
    page.fill("#draws", "300")
    page.click("#run-simulation")
    page.wait_for_selector("#sim-result:not([hidden])", timeout=120_000)
    assert page.locator("#fan-chart svg").count() == 1
    assert page.locator("#sim-p50").inner_text().strip() not in ("", "—")
    page.screenshot(path=str(ARTIFACTS / "dashboard-uncertainty-run.png"), full_page=True)
    assert not outside, f"the pages requested outside hosts: {outside[:3]}"
    page.close()
