"""Render a run report (the dict `edgekit run` builds) as JSON, Markdown and one self-contained
HTML page. Data first: these functions only read the report."""

from __future__ import annotations

import html
import json
from pathlib import Path

from .artifacts import atomic_output


def write_all(report: dict, out_dir: Path) -> dict:
    paths = {}
    for fmt, render in (("json", to_json), ("md", to_markdown), ("html", to_html)):
        path = out_dir / f"report.{fmt}"
        with atomic_output(path) as tmp:
            tmp.write_text(render(report))
        paths[fmt] = str(path)
    return paths


def load_report(path) -> dict:
    """Read the run report PATH (the report.json `edgekit run` wrote) for re-rendering.

    PATH must be a regular file (not a FIFO or /dev/zero) of at most the `max_report_bytes`
    limit (edgekit.limits), valid JSON, of kind "run", with the keys RunReport requires and each
    build with the keys BuildResult requires (edgekit.results, from schemas/report.schema.json).
    Returns the report dict. Raises BadInput (exit 2) naming the first problem."""
    from .errors import BadInput
    from .limits import regular_file
    from .results import BuildResult, RunReport

    hint = "Pass the report.json that `edgekit run` wrote."
    p = regular_file(path, "The report", "max_report_bytes", hint)
    try:
        report = json.loads(p.read_text())
    except OSError as exc:
        raise BadInput(f"Cannot read {p}: {exc.strerror}.", hint) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadInput(f"{p} is not valid JSON ({exc}).", hint) from exc
    except RecursionError:
        raise BadInput(f"{p} is nested too deeply to be a report.", hint) from None
    if not isinstance(report, dict) or report.get("kind") != "run" or "builds" not in report:
        raise BadInput(f"{p} is not an edgekit run report.", hint)
    missing = [k for k in RunReport._REQUIRED if k not in report]
    if missing or not isinstance(report["builds"], list):
        raise BadInput(f"{p} is an incomplete run report: " +
                       (f"missing {', '.join(missing)}." if missing else "`builds` is not a list."), hint)
    for i, b in enumerate(report["builds"]):
        gone = [k for k in BuildResult._REQUIRED if not isinstance(b, dict) or k not in b]
        if not gone and not (isinstance(b["options"], dict) and {"to", "quantize"} <= set(b["options"])):
            gone = ["options.to/quantize"]
        if not gone and not (isinstance(b["profiles"], list) and isinstance(b["budgets"], list)):
            gone = ["profiles/budgets as lists"]
        if gone:
            raise BadInput(f"{p} is an incomplete run report: build {i + 1} lacks {', '.join(gone)}.", hint)
    # The renderers read nested fields too (latency_ms.p50, each budget's value and limit, parity
    # outputs' psnr_db ...): render once here, so that a report with one of those missing or of
    # the wrong type is refused as such instead of failing halfway through `edgekit report`.
    try:
        to_markdown(report)
        to_html(report)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        field = f"no {exc.args[0]!r} field" if isinstance(exc, KeyError) and exc.args else f"{type(exc).__name__}: {exc}"
        raise BadInput(f"{p} is a damaged run report: a field the report shows is missing or of the wrong type "
                       f"({field}).", hint + " If it was edited by hand, compare it with a fresh one.") from exc
    return report


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=str) + "\n"


def _fmt(v, unit="") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        s = f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    else:
        s = str(v)
    return f"{s} {unit}".strip()


def _mb(n) -> str:
    return "—" if n is None else f"{n / 1e6:.3f} MB"


def _status(b: dict) -> str:
    if b["status"] == "failed":
        return "❌ build failed"
    return ("✅ pass" if b.get("passed") else "❌ fail") + (" (cached)" if b["status"] == "cached" else "")


def _budget_cell(v: dict) -> str:
    where = f" @{v['target']}" if v.get("target") else ""
    if v["value"] is None:
        return f"❌ {v['budget']}{where}: not measured (limit {_fmt(v['limit'], v['unit'])})"
    mark = "✅" if v["passed"] else "❌"
    by = "" if v["passed"] else f", over by {_fmt(abs(v['margin']), v['unit'])}"
    return f"{mark} {v['budget']}{where}: {_fmt(v['value'], v['unit'])} (limit {_fmt(v['limit'], v['unit'])}{by})"


def to_markdown(report: dict) -> str:
    """Short enough for a CI job summary ($GITHUB_STEP_SUMMARY): a table per build."""
    verdict = "✅ all budgets hold" if report.get("passed") else "❌ budgets failed"
    if report.get("interrupted"):
        verdict = "⚠️ interrupted: " + ", ".join(b["name"] for b in report["builds"]) + " finished; not run: " + ", ".join(report.get("not_run", []))
    lines = [f"## edgekit · {Path(report['model']).name} · {verdict}", ""]
    lines += ["| build | format | recipe | size | parity | status |", "|---|---|---|---|---|---|"]
    for b in report["builds"]:
        c = b.get("convert") or {}
        par = c.get("parity") or {}
        psnr = min((o["psnr_db"] for o in par.get("outputs", [])), default=None)
        lines.append(f"| {b['name']} | {b['options']['to']} | {b['options']['quantize']} | {_mb(c.get('size_bytes'))} | "
                     f"{'—' if not par else ('pass' if par['passed'] else 'FAIL') + f', PSNR {_fmt(psnr)} dB'} | {_status(b)} |")
    for b in report["builds"]:
        lines += ["", f"### {b['name']}", ""]
        if b.get("error"):
            lines += [f"**Build failed:** {b['error']['message']}", "", f"{b['error'].get('hint') or ''}"]
            continue
        for prof in b["profiles"]:
            if "error" in prof:
                lines.append(f"- {prof['target']}: ❌ {prof['error']['message']}")
            else:
                lat = prof["latency_ms"]
                lines.append(f"- {prof['target']}: p50 {_fmt(lat['p50'])} ms, p90 {_fmt(lat['p90'])} ms, "
                             f"peak RSS {_fmt(prof.get('peak_rss_mb'))} MB" + (" (emulated: not device speed)" if prof.get("emulated") else ""))
        if b["budgets"]:
            lines += ["", "| budget | verdict |", "|---|---|"]
            lines += [f"| {v['budget']}{' @' + v['target'] if v.get('target') else ''} | {_budget_cell(v)} |" for v in b["budgets"]]
        for n in b.get("notes", []):
            lines.append(f"- note: {n}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML with inline SVG plots

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #d6dae3;padding:4px 8px;text-align:left}
th{background:#f3f5f9} .pass{color:#137333;font-weight:600} .fail{color:#b3261e;font-weight:600}
.muted{color:#5f6775} svg{display:block;margin:8px 0} .plot text{font-size:11px;fill:#1d2330}
"""


def _esc(x) -> str:
    return html.escape(str(x))


def _svg_size_bars(builds: list[dict]) -> str:
    rows = [(b["name"], (b.get("convert") or {}).get("size_bytes")) for b in builds]
    rows = [(n, s) for n, s in rows if s]
    if not rows:
        return "<p class='muted'>No artifact sizes.</p>"
    top = max(s for _, s in rows)
    w, bar_h, left = 560, 22, 140
    h = len(rows) * (bar_h + 8) + 10
    parts = [f"<svg class='plot' id='size-bars' width='{w + 120}' height='{h}' role='img' aria-label='artifact sizes'>"]
    for i, (name, size) in enumerate(rows):
        y = 5 + i * (bar_h + 8)
        bw = max(2, int((w - left) * size / top))
        parts.append(f"<text x='0' y='{y + 15}'>{_esc(name)}</text>"
                     f"<rect x='{left}' y='{y}' width='{bw}' height='{bar_h}' fill='#4c78a8'></rect>"
                     f"<text x='{left + bw + 6}' y='{y + 15}'>{size / 1e6:.3f} MB</text>")
    parts.append("</svg>")
    return "".join(parts)


def _svg_latency(builds: list[dict], target: str) -> str:
    """Box plot per build: whiskers min–max, box p50–p90, tick at p99 (all in ms)."""
    rows = []
    for b in builds:
        for prof in b["profiles"]:
            if prof.get("target") == target and "latency_ms" in prof:
                rows.append((b["name"], prof["latency_ms"]))
    if not rows:
        return f"<p class='muted'>No latency measured on {_esc(target)}.</p>"
    top = max(l["max"] for _, l in rows) or 1.0
    w, row_h, left = 520, 30, 140
    h = len(rows) * row_h + 30
    x = lambda v: left + (w - 10) * v / top
    parts = [f"<svg class='plot latency' data-target='{_esc(target)}' width='{left + w + 60}' height='{h}' role='img' "
             f"aria-label='latency on {_esc(target)}'>"]
    for i, (name, l) in enumerate(rows):
        y = 10 + i * row_h
        mid = y + 10
        parts.append(
            f"<text x='0' y='{mid + 4}'>{_esc(name)}</text>"
            f"<line x1='{x(l['min']):.1f}' x2='{x(l['max']):.1f}' y1='{mid}' y2='{mid}' stroke='#333'></line>"
            f"<rect x='{x(l['p50']):.1f}' y='{y + 2}' width='{max(x(l['p90']) - x(l['p50']), 2):.1f}' height='16' "
            f"fill='#f58518' stroke='#333'><title>p50 {l['p50']:.3f} ms · p90 {l['p90']:.3f} ms</title></rect>"
            f"<line x1='{x(l['p99']):.1f}' x2='{x(l['p99']):.1f}' y1='{y}' y2='{y + 20}' stroke='#b3261e'></line>"
            f"<text x='{x(l['max']) + 4:.1f}' y='{mid + 4}'>{l['p50']:.2f} ms</text>")
    parts.append(f"<text x='{left}' y='{h - 4}'>0</text><text x='{left + w - 40}' y='{h - 4}'>{top:.2f} ms</text></svg>")
    return "".join(parts)


def _svg_layers(layers: list[dict], metric: str = "psnr_db") -> str:
    vals = [(l.get("name") or l.get("layer"), l.get(metric)) for l in layers if l.get(metric) is not None]
    if not vals:
        return ""
    w, h, left = 560, 160, 40
    top = max(v for _, v in vals) or 1.0
    step = (w - left) / max(len(vals), 1)
    pts = " ".join(f"{left + i * step:.1f},{h - 20 - (h - 40) * v / top:.1f}" for i, (_, v) in enumerate(vals))
    return (f"<svg class='plot layers' width='{w}' height='{h}' role='img' aria-label='per-layer {metric}'>"
            f"<polyline points='{pts}' fill='none' stroke='#54a24b' stroke-width='2'></polyline>"
            f"<text x='0' y='12'>{top:.0f}</text><text x='0' y='{h - 20}'>0</text>"
            f"<text x='{left}' y='{h - 4}'>per-layer {metric}, topological order</text></svg>")


def to_html(report: dict) -> str:
    builds = report["builds"]
    ok = report.get("passed")
    title = f"edgekit · {Path(report['model']).name}"
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
           f"<style>{CSS}</style></head><body>",
           f"<h1>{_esc(title)}</h1><p class='{'pass' if ok else 'fail'}' id='verdict'>"
           f"{'All budgets hold' if ok else 'Budgets failed' if not report.get('interrupted') else 'Interrupted'}"
           f"</p><p class='muted'>edgekit {_esc(report.get('edgekit'))} · {_esc(report.get('started'))} · "
           f"targets: {_esc(', '.join(report.get('targets', [])))}</p>",
           "<h2>Build matrix</h2><table id='matrix'><tr><th>build</th><th>format</th><th>recipe</th><th>I/O</th>"
           "<th>size</th><th>parity</th><th>verdict</th></tr>"]
    for b in builds:
        c = b.get("convert") or {}
        par = c.get("parity") or {}
        psnr = min((o["psnr_db"] for o in par.get("outputs", [])), default=None)
        cls = "pass" if b.get("passed") else "fail"
        out.append(f"<tr><td>{_esc(b['name'])}</td><td>{_esc(b['options']['to'])}</td><td>{_esc(b['options']['quantize'])}</td>"
                   f"<td>{_esc(b['options'].get('io_dtype', '—'))}</td><td>{_mb(c.get('size_bytes'))}</td>"
                   f"<td>{'—' if not par else _esc(('pass' if par['passed'] else 'FAIL') + f', PSNR {_fmt(psnr)} dB')}</td>"
                   f"<td class='{cls}'>{_esc(_status(b))}</td></tr>")
    out.append("</table><h2>Budgets</h2><table id='budgets'><tr><th>build</th><th>budget</th><th>target</th>"
               "<th>value</th><th>limit</th><th>verdict</th></tr>")
    for b in builds:
        if b.get("error"):
            out.append(f"<tr><td>{_esc(b['name'])}</td><td colspan='5' class='fail'>build failed: {_esc(b['error']['message'])}</td></tr>")
        for v in b["budgets"]:
            out.append(f"<tr><td>{_esc(b['name'])}</td><td title='{_esc(v.get('meaning', ''))}'>{_esc(v['budget'])}</td>"
                       f"<td>{_esc(v.get('target', ''))}</td><td>{_esc(_fmt(v['value'], v['unit']))}</td>"
                       f"<td>{_esc(_fmt(v['limit'], v['unit']))}</td>"
                       f"<td class='{'pass' if v['passed'] else 'fail'}'>{'pass' if v['passed'] else 'FAIL'}</td></tr>")
    out.append("</table><h2>Latency per target</h2><p class='muted'>whiskers min–max · box p50–p90 · red tick p99</p>")
    for t in report.get("targets", []):
        emulated = any(p.get("emulated") for b in builds for p in b["profiles"] if p.get("target") == t)
        out.append(f"<h3>{_esc(t)}{' (emulated: instruction timing, not device speed)' if emulated else ''}</h3>")
        out.append(_svg_latency(builds, t))
    out.append("<h2>Artifact size</h2>" + _svg_size_bars(builds))
    for b in builds:
        layers = ((b.get("convert") or {}).get("parity") or {}).get("layers")
        if layers:
            out.append(f"<h2>Per-layer parity · {_esc(b['name'])}</h2>" + _svg_layers(layers))
    out.append("</body></html>\n")
    return "".join(out)
