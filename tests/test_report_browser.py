"""Open a generated report in a real headless Chromium and check every chart rendered.

The page records script errors on ``<html data-report-errors>`` and, once loaded, the number
of Plotly charts and of charts that drew their SVG (``data-plots``, ``data-plots-rendered``);
``--dump-dom`` returns the DOM after the scripts ran.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import device_profiles
import reports
from reports import DeviceRoof, ModelCost, OpCost, Timing, breakdown, feasibility, pareto, roofline

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "no headless browser on PATH (looked for chromium, chromium-browser, google-chrome): "
        "install the Debian package `chromium` (.ci/run does) to run this check"
    )


def _dump_dom(page: Path, tmp_path: Path) -> str:
    out = subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _write_run(run: Path) -> None:
    """A results.csv in the layout `explorer search` writes, and its search.json."""
    run.mkdir()
    devices = [device_profiles.get(k) for k in ("rpi4", "rpi5")]
    columns = [
        "number",
        "state",
        "family",
        "feasible",
        "pareto",
        "reason",
        "macro_f1",
        "accuracy",
        "objective",
        "cost",
        "params",
        "macs",
        "flops",
        "elementwise_flops",
        "weight_bytes",
        "peak_activation_bytes",
        "traffic_bytes",
        "predicted_ms_rpi4",
        "predicted_ms_rpi5",
        "host_ms",
        "config_json",
        "error",
    ]
    rows = []
    for n in range(24):
        flops = int(2e6 * 1.6**n)
        feasible = n < 20
        f1 = 0.3 + 0.025 * n + (0.04 if n % 3 == 0 else 0.0) if feasible else None
        rows.append(
            {
                "number": n,
                "state": "FAIL" if n == 7 else "COMPLETE",
                "family": ("ding", "lu", "yang", "kumar")[n % 4],
                "feasible": str(feasible).lower(),
                "pareto": str(n % 3 == 0 and feasible).lower(),
                "reason": "" if feasible else "flops",
                "macro_f1": f1,
                "accuracy": f1,
                "objective": "predicted_ms_rpi4",
                "params": flops // 150,
                "macs": flops // 2,
                "flops": flops,
                "elementwise_flops": flops // 20,
                "weight_bytes": flops // 40,
                "peak_activation_bytes": flops // 10,
                "traffic_bytes": flops // 2,
                "predicted_ms_rpi4": flops / 12e9,
                "predicted_ms_rpi5": flops / 30e9,
                "config_json": json.dumps({"family": "ding", "dropout": 0.3, "n": n}),
            }
        )
    with (run / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    (run / "search.json").write_text(
        json.dumps(
            {
                "study": "browser-test",
                "objectives": [
                    {"name": "macro_f1", "direction": "maximize"},
                    {"name": "predicted_ms_rpi4", "direction": "minimize"},
                    {"name": "params", "direction": "minimize"},
                ],
                "devices": [d.to_dict() for d in devices],
                "references": [
                    {
                        "name": "ding2025",
                        "params": 66584,
                        "flops": 14324736,
                        "predicted_ms": {"rpi4": 0.61},
                    }
                ],
                "environment": {"python": "3.11", "torch": "2.13"},
            }
        )
    )


def _extra_sections() -> list[reports.Section]:
    roofs = [DeviceRoof.from_profile(device_profiles.get(k)) for k in ("rpi4", "zenbo-junior-2")]
    ops = tuple(
        OpCost(
            module=f"visual.features.{i}",
            op="aten.op",
            kind=kind,
            flops=flops,
            traffic_bytes=nbytes,
        )
        for i, (kind, flops, nbytes) in enumerate(
            [
                ("conv", 1_100_000, 280_000),
                ("activation", 60_000, 490_000),
                ("pool", 60_000, 310_000),
                ("linear", 80_000, 170_000),
                ("memory", 0, 20_000),
            ]
        )
    )
    model = ModelCost(
        name="toy",
        params=10_000,
        flops=1_200_000,
        weight_bytes=40_000,
        total_flops=1_300_000,
        traffic_bytes=1_270_000,
        family="ding",
        ops=ops,
    )
    timings = {("toy", "rpi4"): Timing(ms=0.12)}
    return [
        reports.Section(
            title="Roofline per layer",
            figure=roofline.figure(
                roofline.roofline_data([model], roofs, timings=timings, per_layer=True)
            ),
        ),
        reports.Section(
            title="Feasibility",
            figure=feasibility.figure(
                feasibility.feasibility_data([model, *feasibility.TABLE_IX_MODELS], roofs)
            ),
        ),
        reports.Section(
            title="Breakdown",
            figure=breakdown.figure(breakdown.breakdown_data(model, device=roofs[0])),
        ),
    ]


_SORT_PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.querySelector("table.sortable");
  var th = Array.prototype.find.call(table.querySelectorAll("th"), function (h) {
    return h.textContent === "macro_f1";
  });
  var first = function () { return table.tBodies[0].rows[0].cells[0].textContent; };
  th.click();
  document.documentElement.setAttribute("data-sorted-asc", first());
  th.click();
  document.documentElement.setAttribute("data-sorted-desc", first());
});
</script>"""


def test_every_chart_of_the_report_renders_without_script_errors(tmp_path: Path) -> None:
    _browser()  # skip early, before writing anything
    run = tmp_path / "run"
    _write_run(run)
    text = reports.report_page(run, extra_sections=_extra_sections())
    page = run / "report.html"
    page.write_text(text, encoding="utf-8")
    n_charts = text.count("Plotly.newPlot(")
    # 4 Pareto pairs (rpi4, rpi5, flops, params), the 3-D view, roofline + feasibility of the
    # front, and the 3 extra sections.
    assert n_charts == 10
    assert text.count("plotly.js v") == 1  # the library is embedded once
    assert "<script src=" not in text  # nothing loaded from the network

    # Click the macro_f1 header twice (ascending, then descending) in a copy of the page and
    # record which trial comes first each time.
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", _SORT_PROBE + "</body>"), encoding="utf-8")
    dom = _dump_dom(probe, tmp_path)
    root = re.search(r"<html[^>]*>", dom)
    assert root, dom[:500]
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', root.group(0)))
    assert "data-report-errors" not in attrs, attrs.get("data-report-errors")
    assert attrs.get("data-report-status") == "ok", attrs
    assert attrs.get("data-plots") == str(n_charts)
    assert attrs.get("data-plots-rendered") == str(n_charts)
    assert dom.count('class="main-svg"') >= n_charts
    assert (attrs.get("data-sorted-asc"), attrs.get("data-sorted-desc")) == ("1", "18")
    # The sortable trials table has every trial.
    table = dom[dom.index('<table class="data sortable"') :]
    assert table[: table.index("</table>")].count("<tr") == 24 + 1


def test_a_page_with_a_broken_script_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a script error is recorded on the page."""
    _browser()
    fig = pareto.figure(
        pareto.pareto_data(
            [
                pareto.TrialPoint(
                    number=0, family="ding", objectives={"flops": 1.0, "macro_f1": 0.5}
                )
            ],
            ["flops", "macro_f1"],
        )
    )
    bad = reports.Section(title="broken", html="<script>undefinedFunction();</script>")
    page = tmp_path / "broken.html"
    page.write_text(
        reports.render_html([reports.Section(title="ok", figure=fig), bad], title="broken")
    )
    dom = _dump_dom(page, tmp_path)
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert "undefinedFunction" in root
    assert 'data-report-status="error"' in root
