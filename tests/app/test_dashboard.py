"""The dashboard's pages and API through FastAPI's test client: every page renders with the small-cell note and
no outside asset, patient-level pages carry the PHI label, the what-if API returns the library's numbers, and a
non-loopback --host is warned about."""

from __future__ import annotations

import re
import warnings

import pytest
from fastapi.testclient import TestClient

from openasm.app.pdf import default_subject
from openasm.app.server import PAGES, HostWarning, check_host, create_app
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(demo_output):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return TestClient(create_app(demo_output / "run"))


def test_every_page_renders_without_outside_assets(client):
    for name, title in PAGES:
        response = client.get(f"/{name}")
        assert response.status_code == 200, name
        assert "<title>openasm" in response.text
        assert "suppressed (shown as &lt;11)" in response.text, name
        assert not EXTERNAL.search(response.text), name
    for asset in ("/static/app.js", "/static/app.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "http" not in response.text.replace("http://127.0.0.1", "")


def test_patient_level_pages_are_labelled_phi(client, demo_output):
    run = load_run_tables(demo_output / "run")
    quality = client.get("/quality").text
    links = re.findall(r'href="(/quality/gaps\?[^"]+)"', quality)
    if links:
        page = client.get(links[0].replace("&amp;", "&"))
        assert page.status_code == 200 and 'id="phi-banner"' in page.text
    cost = client.get("/cost").text
    episodes = re.findall(r'href="(/cost/episode\?[^"]+)"', cost)
    assert episodes or not run.rows("measure_score")
    if episodes:
        page = client.get(episodes[0].replace("&amp;", "&"))
        assert page.status_code == 200 and "protected health information" in page.text


def test_whatif_api_returns_the_librarys_numbers(client, demo_output):
    run = load_run_tables(demo_output / "run")
    subject = default_subject(run)
    decision = decision_for(run, **subject)
    name = next(n for n, lever in decision.levers.items() if n.endswith(".rate"))
    value = decision.levers[name].high
    got = client.post("/api/whatif", json={**subject, "settings": {name: value}}).json()
    expected = decision.evaluate({name: value})
    assert got["final_score"]["scenario"] == pytest.approx(list(expected.final_score[0]), abs=1e-9)
    assert got["total_dollars"]["scenario"] == pytest.approx(float(expected.total_dollars[0]), abs=1e-6)
    bad = client.post("/api/whatif", json={**subject, "settings": {"quality.Q999.rate": 0.5}})
    assert bad.status_code == 422 and "unknown lever" in bad.json()["detail"]


def test_no_suppress_says_the_page_is_internal(demo_output):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        internal = TestClient(create_app(demo_output / "run", suppress=False))
    assert "Internal use only" in internal.get("/outlook").text


def test_a_host_beyond_loopback_is_warned_about():
    with pytest.warns(HostWarning, match="PHI"):
        check_host("0.0.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", HostWarning)
        check_host("127.0.0.1")
        check_host("localhost")
