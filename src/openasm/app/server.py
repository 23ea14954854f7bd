"""The local dashboard (`openasm serve RUN`): FastAPI, server-rendered Jinja2 pages, one small script.

Bound to 127.0.0.1 unless `--host` says otherwise (with a warning): the run's tables often hold PHI and nothing
here authenticates. Every script, style and chart is shipped in the package or rendered by the server (matplotlib
SVG), so the pages work offline and call no outside host.
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from openasm.app import pages
from openasm.app.pdf import default_subject
from openasm.app.templating import render
from openasm.decide.levers import LeverError
from openasm.decide.montecarlo import simulate, simulate_years
from openasm.decide.run_tables import load_run_tables
from openasm.decide.subject import SubjectError
from openasm.disclosure import NO_SUPPRESS, SmallCellPolicy
from openasm.report import plots

LOOPBACK = "127.0.0.1"
PAGES = (("outlook", "Outlook"), ("quality", "Quality"), ("cost", "Cost"), ("whatif", "What-if"),
         ("uncertainty", "Uncertainty"), ("rules", "Rules"))
MAX_DRAWS = 20_000


class HostWarning(UserWarning):
    """The dashboard listens beyond this machine."""


def check_host(host: str) -> None:
    """Warn when `host` is not a loopback address: anyone who can reach it sees the run, PHI included."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        warnings.warn(f"openasm serve listens on {host}: anyone who can reach this address sees the run's data, "
                      "which may contain PHI; there is no login", HostWarning, stacklevel=2)


def create_app(run_dir: Path, suppress: bool = True) -> FastAPI:
    """The dashboard of the run in `run_dir`."""
    run = load_run_tables(run_dir, [] if suppress else [NO_SUPPRESS])
    board = pages.Dashboard(run=run, policy=SmallCellPolicy.from_rules(run.rules),
                            default_subject=default_subject(run))
    app = FastAPI(title="openasm dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    def page(name: str, template: str, request: Request, subject: dict, **context) -> HTMLResponse:
        query = "&".join(f"{k}={v}" for k, v in subject.items())
        html = render(template, policy=board.policy, page=name, pages=PAGES, query=query, subject=subject,
                      subject_label=pages.subject_label(subject), subjects=pages.subjects(board),
                      run_label=str(run.run_dir), performance_year=run.rules.performance_year,
                      payment_year=run.rules.payment_year, **context)
        return HTMLResponse(html)

    def chosen(npi: str | None, tin: str | None) -> dict:
        subject = board.subject(npi, tin)
        try:
            board.decision(subject)
        except SubjectError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        return subject

    @app.get("/")
    def index() -> RedirectResponse:
        return RedirectResponse("/outlook")

    def subject_view(name: str, build):
        """GET /<name>?npi=|tin=: the page `name`.html with the data `build(board, subject)` returns."""

        def view(request: Request, npi: str | None = None, tin: str | None = None) -> HTMLResponse:
            subject = chosen(npi, tin)
            return page(name, f"{name}.html", request, subject, **build(board, subject))

        return view

    for name, build in (("outlook", pages.outlook_page), ("quality", pages.quality_page),
                        ("cost", pages.cost_page), ("whatif", pages.whatif_page)):
        app.add_api_route(f"/{name}", subject_view(name, build), methods=["GET"], response_class=HTMLResponse)

    @app.get("/quality/gaps", response_class=HTMLResponse)
    def gaps(request: Request, measure: str = Query(...), clinician: str = Query(...), npi: str | None = None,
             tin: str | None = None):
        subject = chosen(npi, tin)
        return page("quality", "gaps.html", request, subject, **pages.gap_page(board, subject, measure, clinician))

    @app.get("/cost/episode", response_class=HTMLResponse)
    def episode(request: Request, episode_id: str = Query(...), npi: str | None = None, tin: str | None = None):
        subject = chosen(npi, tin)
        return page("cost", "episode.html", request, subject, **pages.episode_page(board, episode_id))

    @app.post("/api/whatif")
    def whatif_api(payload: dict = Body(...)) -> JSONResponse:
        subject = chosen(payload.get("npi"), payload.get("tin"))
        try:
            settings = {str(k): float(v) for k, v in (payload.get("settings") or {}).items()}
            return JSONResponse(pages.whatif_result(board, subject, settings))
        except (LeverError, ValueError) as err:
            raise HTTPException(status_code=422, detail=str(err)) from err

    @app.get("/uncertainty", response_class=HTMLResponse)
    def uncertainty(request: Request, npi: str | None = None, tin: str | None = None):
        subject = chosen(npi, tin)
        key = tuple(sorted(subject.items()))
        return page("uncertainty", "uncertainty.html", request, subject, sim=board.simulations.get(key))

    @app.post("/api/simulate")
    def simulate_api(payload: dict = Body(...)) -> JSONResponse:
        subject = chosen(payload.get("npi"), payload.get("tin"))
        draws, seed = int(payload.get("draws", 2000)), int(payload.get("seed", 0))
        if not 1 <= draws <= MAX_DRAWS:
            raise HTTPException(status_code=422, detail=f"draws must be between 1 and {MAX_DRAWS:,}")
        decision = board.decision(subject)
        sim = simulate(decision, draws=draws, seed=seed)
        board.simulations[tuple(sorted(subject.items()))] = sim
        summary = sim.summary()
        years = simulate_years(decision, draws=max(100, draws // 5), seed=seed)
        return JSONResponse({"summary": summary, "fan_chart": plots.fan_chart(years),
                             "convergence_chart": plots.convergence_chart(summary["convergence"])})

    @app.get("/rules", response_class=HTMLResponse)
    def rules(request: Request, npi: str | None = None, tin: str | None = None):
        subject = chosen(npi, tin)
        return page("rules", "rules.html", request, subject, **pages.rules_page(board))

    return app


def serve(run_dir: Path, host: str = LOOPBACK, port: int = 8765, suppress: bool = True) -> None:
    """Run the dashboard until interrupted."""
    import uvicorn

    check_host(host)
    uvicorn.run(create_app(run_dir, suppress=suppress), host=host, port=port, log_level="warning")
