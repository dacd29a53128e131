"""Render a run report (the dict `edgekit run` builds) as JSON, Markdown and one self-contained
HTML page (a Jinja2 template in edgekit/templates with matplotlib plots inlined as SVG; nothing
is loaded from the network). Data first: these functions only read the report. Sizes and
durations are written by edgekit.units (SI bytes, significant digits)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .artifacts import atomic_output
from .units import MISSING, format_bytes, format_limit, format_mib, format_ms, format_value


def write_all(report: dict, out_dir: Path) -> dict:
    """Write REPORT as OUT_DIR/report.json, report.md and report.html (each atomically); returns
    {format: path}."""
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
    """The report as indented JSON (what report.json holds)."""
    return json.dumps(report, indent=2, default=str) + "\n"


def _status(b: dict) -> str:
    if b["status"] == "failed":
        return "❌ build failed"
    return ("✅ pass" if b.get("passed") else "❌ fail") + (" (cached)" if b["status"] == "cached" else "")


def budget_gap(v: dict) -> str:
    """How a failed budget V misses its limit: "over by X" for a maximum (value above the limit),
    "short by X" for a minimum (value below it), "" when it holds or was not measured."""
    if v.get("passed") or v.get("value") is None:
        return ""
    word = "short by" if v["value"] < v["limit"] else "over by"
    return f"{word} {format_value(abs(v['value'] - v['limit']), v.get('unit', ''))}"


def _budget_cell(v: dict) -> str:
    where = f" @{v['target']}" if v.get("target") else ""
    limit = format_limit(v["limit"], v.get("unit", ""))
    if v["value"] is None:
        return f"❌ {v['budget']}{where}: not measured (limit {limit})"
    gap = budget_gap(v)
    return (f"{'✅' if v['passed'] else '❌'} {v['budget']}{where}: {format_value(v['value'], v.get('unit', ''))} "
            f"(limit {limit}{', ' + gap if gap else ''})")


def failing_first(items: list[dict]) -> list[dict]:
    """ITEMS (builds or budget verdicts) with the failing ones first, each group in its order."""
    return sorted(items, key=lambda x: bool(x.get("passed")))


def io_dtypes(b: dict) -> str:
    """The I/O types of build B's artifact as its manifest records them ("int8 → int8"), from the
    convert result's inputs/outputs, else its io_dtype; "—" without an artifact (never the
    recipe's requested default)."""
    c = b.get("convert") or {}
    ins = sorted({str(t.get("dtype")) for t in c.get("inputs") or [] if isinstance(t, dict) and t.get("dtype")})
    outs = sorted({str(t.get("dtype")) for t in c.get("outputs") or [] if isinstance(t, dict) and t.get("dtype")})
    if ins or outs:
        return f"{'/'.join(ins) or '?'} → {'/'.join(outs) or '?'}"
    return str(c["io_dtype"]) if c.get("io_dtype") else MISSING


def _parity(c: dict) -> tuple[str, float | None]:
    par = c.get("parity") or {}
    if not par:
        return MISSING, None
    psnr = min((o["psnr_db"] for o in par.get("outputs", [])), default=None)
    return ("pass" if par["passed"] else "FAIL") + f", PSNR {format_value(psnr, 'dB')}", psnr


def accuracy_text(c: dict) -> str:
    """Top-1 accuracy on the labels: "97.5% (reference 97.7%, −0.25 points)", or "—"."""
    acc = ((c or {}).get("parity") or {}).get("accuracy")
    if not acc:
        return MISSING
    return (f"{100 * acc['candidate']:.1f}% (reference {100 * acc['reference']:.1f}%, "
            f"{100 * acc['delta']:+.2f} points)")


def to_markdown(report: dict) -> str:
    """Short enough for a CI job summary ($GITHUB_STEP_SUMMARY): a table per build, failing first."""
    verdict = "✅ all budgets hold" if report.get("passed") else "❌ budgets failed"
    if report.get("interrupted"):
        verdict = "⚠️ interrupted: " + ", ".join(b["name"] for b in report["builds"]) + " finished; not run: " + ", ".join(report.get("not_run", []))
    builds = failing_first(report["builds"])
    lines = [f"## edgekit · {Path(report['model']).name} · {verdict}", ""]
    lines += ["| build | format | recipe | I/O | size | parity | accuracy | status |", "|---|---|---|---|---|---|---|---|"]
    for b in builds:
        c = b.get("convert") or {}
        lines.append(f"| {b['name']} | {b['options']['to']} | {b['options']['quantize']} | {io_dtypes(b)} | "
                     f"{format_bytes(c.get('size_bytes'))} | {_parity(c)[0]} | {accuracy_text(c)} | {_status(b)} |")
    for b in builds:
        lines += ["", f"### {b['name']}", ""]
        if b.get("error"):
            lines += [f"**Build failed:** {b['error']['message']}", "", f"{b['error'].get('hint') or ''}"]
            continue
        for prof in b["profiles"]:
            if "error" in prof:
                lines.append(f"- {prof['target']}: ❌ {prof['error']['message']}")
            else:
                lat = prof["latency_ms"]
                lines.append(f"- {prof['target']}: p50 {format_ms(lat['p50'])}, p90 {format_ms(lat['p90'])}, "
                             f"peak RSS {format_mib(prof.get('peak_rss_mb'))}" + (" (emulated: not device speed)" if prof.get("emulated") else ""))
        if b["budgets"]:
            lines += ["", "| budget | verdict |", "|---|---|"]
            lines += [f"| {v['budget']}{' @' + v['target'] if v.get('target') else ''} | {_budget_cell(v)} |"
                      for v in failing_first(b["budgets"])]
        for n in b.get("notes", []):
            lines.append(f"- note: {n}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML (Jinja2 + inline SVG)

def _num(x) -> float | None:
    """X as a finite float, or None (plots skip what they cannot place)."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _cell(text: str, value=None, field: str | None = None) -> dict:
    """A table cell: the text shown and, for numbers, the raw value the tests compare with report.json."""
    return {"text": text, "value": value if _num(value) is not None else None, "field": field}


def _devices(report: dict) -> list[dict]:
    """Per target: the machine and the runtime that measured it (first profile without an error)."""
    out = []
    for t in report.get("targets", []):
        prof = next((p for b in report["builds"] for p in b["profiles"]
                     if isinstance(p, dict) and p.get("target") == t and "error" not in p), None)
        if prof is None:
            out.append({"target": t, "machine": "not measured", "runtimes": [], "emulated": False})
            continue
        d = prof.get("device") or {}
        mem = format_mib(d["memory_mb"]) if _num(d.get("memory_mb")) is not None else None
        machine = " · ".join(str(x) for x in (d.get("cpu"), d.get("board"), d.get("machine"),
                                                f"{d['cores']} cores" if d.get("cores") else None, mem and f"{mem} RAM",
                                                d.get("os"), d.get("kernel") and f"kernel {d['kernel']}",
                                                d.get("python") and f"Python {d['python']}") if x)
        rt = prof.get("runtime") or {}
        runtimes = [f"{rt.get('name')} {rt.get('version') or ''}".strip() + " (measured with)"] if rt.get("name") else []
        runtimes += [f"{k} {v}" for k, v in sorted((d.get("runtimes") or {}).items()) if v]
        out.append({"target": t, "machine": machine or MISSING, "runtimes": runtimes,
                    "emulated": bool(prof.get("emulated"))})
    return out


def _context(report: dict) -> dict:
    from .report import ops_rows
    from .report_plots import latency_svg, layers_svg, size_svg

    builds = failing_first(report["builds"])
    matrix, budgets, ops = [], [], []
    for b in builds:
        c = b.get("convert") or {}
        par_text, psnr = _parity(c)
        acc = ((c.get("parity") or {}).get("accuracy") or {})
        matrix.append({"name": b["name"], "passed": bool(b.get("passed")), "cells": [
            _cell(b["options"]["to"]), _cell(b["options"]["quantize"]), _cell(io_dtypes(b), field="io"),
            _cell(format_bytes(c.get("size_bytes")), c.get("size_bytes"), "size_bytes"),
            _cell(par_text, psnr, "psnr_db"), _cell(accuracy_text(c), acc.get("candidate"), "accuracy"),
            _cell(_status(b)[2:], field="status")]})  # without the emoji: not every browser has the font
        if b.get("error"):
            budgets.append({"name": b["name"], "error": b["error"]["message"]})
        for v in failing_first(b["budgets"]):
            unit = v.get("unit", "")
            verdict = "pass" if v["passed"] else "not measured" if v["value"] is None else f"FAIL: {budget_gap(v)}"
            budgets.append({"name": b["name"], "error": None, "budget": v["budget"], "meaning": v.get("meaning", ""),
                            "target": v.get("target") or "", "passed": bool(v["passed"]), "cells": [
                                _cell(format_value(v["value"], unit), v["value"], "value"),
                                _cell(format_limit(v["limit"], unit), v["limit"], "limit"),
                                _cell(verdict, field="verdict")]})
        for p in b["profiles"]:
            if isinstance(p, dict) and "latency_ms" in p:
                rows = ops_rows(p)
                if rows:
                    ops.append({"name": b["name"], "target": p["target"], "p50": format_ms(p["latency_ms"]["p50"]),
                                "rows": rows})
    latency = [{"build": b["name"], "target": p["target"], "emulated": bool(p.get("emulated")),
                "cells": [_cell(format_ms(p["latency_ms"][k]), p["latency_ms"][k], k) for k in ("p50", "p90", "p99")]
                + [_cell(format_mib(p.get("peak_rss_mb")), p.get("peak_rss_mb"), "peak_rss_mb")]}
               for b in builds for p in b["profiles"] if isinstance(p, dict) and "latency_ms" in p]
    layer_plots = []
    for b in builds:
        layers = ((b.get("convert") or {}).get("parity") or {}).get("layers")
        svg = layers_svg(layers, name=b["name"]) if layers else ""
        if svg:
            layer_plots.append({"name": b["name"], "svg": svg})
    ok = report.get("passed")
    return {
        "title": f"edgekit · {Path(report['model']).name}", "passed": bool(ok),
        "verdict": "Interrupted" if report.get("interrupted") else "All budgets hold" if ok else "Budgets failed",
        "meta": " · ".join(str(x) for x in (f"edgekit {report.get('edgekit')}", report.get("started"),
                                             "targets: " + ", ".join(map(str, report.get("targets", []))))),
        "devices": _devices(report), "tools": sorted((k, v) for k, v in (report.get("tools") or {}).items() if v),
        "matrix": matrix, "budgets": budgets, "latency": latency, "ops": ops,
        "latency_svg": latency_svg(report), "size_svg": size_svg(report), "layer_plots": layer_plots,
    }


def to_html(report: dict) -> str:
    """One self-contained page (inline CSS and SVG, no script, no network): verdict, machines and
    runtime versions per target, the build matrix (I/O types from the artifacts, accuracy), the
    budgets (failing first, "over by"/"short by"), latency and size plots with real axes and the
    budgets as lines, per-operator shares. Each number cell carries data-field/data-value: the
    raw value of report.json it shows."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, keep_trailing_newline=True)
    return env.get_template("report.html.j2").render(**_context(report))
