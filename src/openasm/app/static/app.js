// openasm dashboard: subject selector, what-if sliders (recomputed on the server by the engine's formulas) and the
// Monte Carlo run. No framework and no outside host: every request goes to the server that sent this page.
"use strict";
const openasm = (() => {
  const body = document.body;
  const subject = () => (body.dataset.npi ? { npi: body.dataset.npi } : { tin: body.dataset.tin });
  const money = (v) => (v === null || v === undefined ? "—" : (v < 0 ? "−$" : "$") + Math.abs(v).toLocaleString("en-US", { maximumFractionDigits: 0 }));
  const pct = (v, d) => (v === null ? "—" : (v >= 0 ? "+" : "") + (100 * v).toFixed(d) + "%");
  const num = (v, d) => (v === null ? "—" : v.toFixed(d));
  const post = async (url, payload) => {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
    return response.json();
  };
  const signed = (el, diff, format) => { el.textContent = diff === 0 ? "" : " (" + (diff > 0 ? "+" : "−") + format(Math.abs(diff)) + ")"; el.className = diff > 0 ? "up" : diff < 0 ? "down" : ""; };

  function chooseSubject(select, page) { window.location = "/" + page + "?" + select.value; }

  function whatif() {
    const form = document.getElementById("levers");
    if (!form) return;
    const sliders = Array.from(form.querySelectorAll("input[type=range]"));
    let pending = 0;
    const touched = new Set();  // only levers the user moved: the others stay exactly at the run's values
    const recompute = async () => {
      const settings = {};
      sliders.forEach((s) => { if (touched.has(s.name)) settings[s.name] = Number(s.value); });
      const ticket = ++pending;
      const result = await post("/api/whatif", { ...subject(), settings });
      if (ticket !== pending) return;
      const fs = result.final_score.scenario[0], fs0 = result.final_score.baseline[0];
      document.getElementById("wi-final-score").textContent = num(fs, 2);
      signed(document.getElementById("wi-final-diff"), fs - fs0, (v) => v.toFixed(2));
      document.getElementById("wi-categories").textContent = num(result.quality_pct.scenario[0], 1) + " / " + num(result.cost_pct.scenario[0], 1);
      document.getElementById("wi-af").textContent = pct(result.adjustment_factor.scenario[0], 3);
      document.getElementById("wi-dollars").textContent = money(result.total_dollars.scenario);
      signed(document.getElementById("wi-dollars-diff"), result.total_dollars.scenario - result.total_dollars.baseline, money);
      form.dataset.computed = JSON.stringify(settings);
    };
    sliders.forEach((s, i) => s.addEventListener("input", () => {
      touched.add(s.name);
      document.getElementById("out-" + (i + 1)).textContent = Number(s.value).toFixed(3);
      recompute().catch((e) => { document.getElementById("wi-final-diff").textContent = e.message; });
    }));
    document.getElementById("reset").addEventListener("click", () => { sliders.forEach((s) => { s.value = s.dataset.baseline; }); touched.clear(); recompute(); });
  }

  function simulation() {
    const form = document.getElementById("simulate");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = document.getElementById("sim-status");
      status.textContent = "running…";
      try {
        const out = await post("/api/simulate", { ...subject(), draws: Number(document.getElementById("draws").value), seed: Number(document.getElementById("seed").value) });
        const s = out.summary;
        document.getElementById("sim-p50").textContent = money(s.dollars.p50);
        document.getElementById("sim-se").textContent = "MC standard error " + money(s.standard_error_p50_dollars);
        document.getElementById("sim-range").textContent = money(s.dollars.p5) + " – " + money(s.dollars.p95);
        document.getElementById("sim-pneg").textContent = (100 * s.probability_af_negative).toFixed(1) + "%";
        document.getElementById("sim-rate").textContent = Math.round(s.draws_per_second).toLocaleString("en-US");
        document.getElementById("fan-chart").innerHTML = out.fan_chart;
        document.getElementById("convergence-chart").innerHTML = out.convergence_chart;
        document.getElementById("sim-levers").innerHTML = s.levers.map((l) => "<tr><td></td><td>" + l.from.toFixed(3) + "</td><td>" + l.to.toFixed(3) + "</td><td class='num'>" + money(l.dollars) + "</td></tr>").join("");
        Array.from(document.getElementById("sim-levers").rows).forEach((row, i) => { row.cells[0].textContent = s.levers[i].label; });
        document.getElementById("sim-result").hidden = false;
        status.textContent = s.draws.toLocaleString("en-US") + " draws in " + s.seconds.toFixed(1) + " s";
      } catch (e) { status.textContent = "failed: " + e.message; }
    });
  }

  document.addEventListener("DOMContentLoaded", () => { whatif(); simulation(); });
  return { chooseSubject };
})();
