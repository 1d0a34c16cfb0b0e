"""Standalone HTML: figures with plotly.js embedded once (works offline, opens from disk).

A report is a ``Page``: a title, an intro and ``Section``s (figures or HTML snippets);
``Page.html()`` (``render_html``) renders it. The pages themselves are assembled in
``reports.search_report`` (a search run) and ``reports.roofline_report`` (models on devices);
the caller writes the file, atomically. ``export_image`` writes one figure as PNG/SVG/PDF.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["Page", "Section", "export_image", "html_table", "render_html"]


@dataclass(frozen=True, kw_only=True)
class Section:
    """One part of a report: a figure, or an HTML snippet, under a heading."""

    title: str
    figure: go.Figure | None = None
    html: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Page:
    """A whole report: what ``render_html`` turns into one standalone HTML page."""

    title: str
    sections: tuple[Section, ...]
    intro: str = ""  # HTML shown under the title

    def html(self) -> str:
        """The standalone page (plotly.js embedded once)."""
        return render_html(self.sections, title=self.title, intro=self.intro)


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>
/* Script errors are recorded on <html data-report-errors> so a headless browser can check. */
window.__reportErrors = [];
window.addEventListener("error", function (e) {{
  window.__reportErrors.push(String(e.message || e));
  document.documentElement.setAttribute("data-report-errors", window.__reportErrors.join(" | "));
}});
</script>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1400px; color: #222; padding: 0 16px; }}
h1 {{ font-size: 1.6em; margin-bottom: 0.2em; }}
h2 {{ font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }}
p.desc {{ color: #555; max-width: 70em; }}
nav a {{ margin-right: 1em; }}
table.data {{ border-collapse: collapse; font-size: 12.5px; }}
table.data th, table.data td {{ border: 1px solid #ddd; padding: 3px 7px; text-align: right; }}
table.data td.text, table.data th.text {{ text-align: left; }}
table.sortable td {{ white-space: nowrap; }}
table.sortable td.config {{ white-space: normal; min-width: 60em; text-align: left;
                            font-size: 11.5px; color: #444; }}
table.sortable th {{ cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }}
table.sortable th:hover {{ background: #e8e8e8; }}
tr.pareto td {{ font-weight: 600; }}
tr.infeasible td {{ color: #999; }}
div.tablewrap {{ max-height: 640px; overflow: auto; border: 1px solid #ddd; }}
</style></head><body>
"""

_TAIL = """<script>
/* Click a header to sort by that column (numbers numerically, blanks last). */
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute("data-sort") !== "asc";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-sort"); });
      th.setAttribute("data-sort", asc ? "asc" : "desc");
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        if (x === "" || y === "") { return x === "" ? (y === "" ? 0 : 1) : -1; }
        var nx = parseFloat(x), ny = parseFloat(y);
        var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
/* Mark the page as rendered once every chart has drawn (checked by the browser test). */
window.addEventListener("load", function () {
  var plots = document.querySelectorAll(".js-plotly-plot");
  var drawn = Array.prototype.filter.call(plots, function (p) {
    return p.querySelector(".main-svg") !== null;
  }).length;
  var root = document.documentElement;
  root.setAttribute("data-plots", String(plots.length));
  root.setAttribute("data-plots-rendered", String(drawn));
  root.setAttribute("data-report-status", window.__reportErrors.length ? "error" : "ok");
});
</script>
</body></html>
"""

_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


def render_html(sections: Sequence[Section], *, title: str, intro: str = "") -> str:
    """One standalone page: plotly.js embedded once, before the first figure."""
    parts = [_HEAD.format(title=html.escape(title)), f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(intro)
    anchors = [f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections)]
    if len(sections) > 1:
        parts.append(f"<nav>{' '.join(anchors)}</nav>")
    js_done = False
    for i, s in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(s.title)}</h2>')
        if s.description:
            parts.append(f'<p class="desc">{s.description}</p>')
        if s.figure is not None:
            parts.append(
                pio.to_html(
                    s.figure,
                    full_html=False,
                    include_plotlyjs=not js_done,
                    config=_PLOT_CONFIG,
                    default_width="100%",
                )
            )
            js_done = True
        if s.html:
            parts.append(s.html)
    parts.append(_TAIL)
    return "\n".join(parts)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    row_classes: Sequence[str] = (),
    sortable: bool = True,
) -> str:
    """An HTML table (text columns left-aligned); click-to-sort when ``sortable``."""

    def is_num(v: Any) -> bool:
        try:
            float(str(v))
            return True
        except ValueError:
            return False

    text_cols = {
        i for i in range(len(columns)) if not all(is_num(r[i]) or str(r[i]) == "" for r in rows)
    }
    head = "".join(
        f'<th class="{"text" if i in text_cols else ""}">{html.escape(str(c))}</th>'
        for i, c in enumerate(columns)
    )
    body = []
    for k, r in enumerate(rows):
        cls = row_classes[k] if k < len(row_classes) else ""
        cells = "".join(_cell(columns[i], v, i in text_cols) for i, v in enumerate(r))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    klass = "data sortable" if sortable else "data"
    return (
        f'<div class="tablewrap"><table class="{klass}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell(column: str, value: Any, text: bool) -> str:
    klass = "config" if column == "config" else "text" if text else ""
    full = str(value)
    if column != "config" and len(full) > 60:  # e.g. a long "reason": full text on hover
        return f'<td class="{klass}" title="{html.escape(full)}">{html.escape(full[:57])}…</td>'
    return f'<td class="{klass}">{html.escape(full)}</td>'


def export_image(
    fig: go.Figure, path: str | Path, *, width: int = 1400, height: int | None = None
) -> Path:
    """Write ``fig`` as PNG/SVG/PDF (by suffix) with kaleido.

    Raises:
        ImportError: kaleido is not installed (the ``export`` extra).
        ValueError: unsupported suffix.
    """
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"image format {target.suffix!r} is not supported: use .png, .svg or .pdf")
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("kaleido").split(".")[0])
    except (PackageNotFoundError, ValueError):
        major = 0
    if major < 1:  # plotly >= 6.1 exports with kaleido 1, which drives a system Chromium
        raise ImportError(
            "static image export needs the optional package 'kaleido' >= 1.0 and a Chrome or "
            "Chromium; install it with: pip install -e '.[export]'"
        )
    pio.write_image(fig, target, width=width, height=height or fig.layout.height or 600)
    return target
