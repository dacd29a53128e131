"""The report's plots, drawn with matplotlib (no pyplot, no display) and returned as inline SVG
text: real axes with ticks in edgekit.units' notation, one scale per metric across targets, and
each budget as a line.

A budget far above everything measured (more than OFF_SCALE times the largest value) would
squeeze the data into a few pixels: then the axis spans the data and the budget is marked at the
right edge with its value, "off scale". The output is deterministic (fixed SVG ids, no date), so
a re-rendered report is byte-identical."""

from __future__ import annotations

import io
import math
import re

from .units import format_bytes, format_ms

OFF_SCALE = 3.0
BOX, BAR, BUDGET, WHISKER, P99 = "#f58518", "#4c78a8", "#b3261e", "#333333", "#b3261e"
_RC = {"svg.fonttype": "none", "svg.hashsalt": "edgekit", "font.size": 9, "font.family": "sans-serif",
       "axes.spines.top": False, "axes.spines.right": False}


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _tick(text: str) -> str:
    """A tick label without trailing zeros: "2.00 µs" → "2 µs", "12.5 kB" stays."""
    num, _, unit = text.partition(" ")
    if "." in num:
        num = num.rstrip("0").rstrip(".")
    return f"{num} {unit}".strip()


def _svg(fig, css_class: str, label: str) -> str:
    """FIG as an <svg> element (XML prolog and doctype dropped) with CSS_CLASS and an aria-label."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # RDF boilerplate
    # several plots share one page: their ids (clip paths, tick markers) must not collide
    prefix = re.sub(r"\W", "-", label)
    text = re.sub(r'\bid="', f'id="{prefix}-', text)
    text = text.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    return text.replace("<svg ", f'<svg class="plot {css_class}" role="img" aria-label="{label}" ', 1)


def _budget_line(ax, limit: float, top: float, text: str, y: float = 1.0) -> None:
    """The budget LIMIT as a dashed vertical line labelled TEXT, or, beyond the axis end TOP, a
    marker at the right edge that says so."""
    if limit <= top:
        ax.axvline(limit, color=BUDGET, linestyle="--", linewidth=1.2)
        ax.annotate(text, (limit, y), xycoords=("data", "axes fraction"), xytext=(3, 2),
                    textcoords="offset points", va="bottom", color=BUDGET)
    else:
        ax.annotate(f"{text}: off scale →", (1.0, 1.0), xycoords="axes fraction", xytext=(0, 2),
                    textcoords="offset points", ha="right", va="bottom", color=BUDGET)


def _limits(report: dict, budget: str, target: str | None = None) -> list[float]:
    """The distinct limits of BUDGET (on TARGET) among the builds' verdicts."""
    out = set()
    for b in report["builds"]:
        for v in b["budgets"]:
            if v.get("budget") == budget and (target is None or v.get("target") == target) and _num(v.get("limit")) is not None:
                out.add(float(v["limit"]))
    return sorted(out)


def _axis_end(values: list[float], limits: list[float]) -> float:
    top = max(values) if values else 1.0
    near = [lim for lim in limits if lim <= OFF_SCALE * top]
    return max([top, *near]) * 1.08 or 1.0


def latency_svg(report: dict) -> str:
    """Box plots of latency, one panel per target on one shared axis (ms, in format_ms ticks):
    whiskers min–max, box p50–p90, diamond at p50, red tick at p99, the latency_p90_ms budget
    of that target as a dashed line. "" when nothing was measured."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    import matplotlib

    panels = []
    for t in report.get("targets", []):
        rows = []
        for b in report["builds"]:
            for p in b["profiles"]:
                lat = p.get("latency_ms") if isinstance(p, dict) and p.get("target") == t else None
                vals = {k: _num(lat.get(k)) for k in ("min", "p50", "p90", "p99", "max")} if isinstance(lat, dict) else {}
                if vals.get("p50") is not None:
                    rows.append((b["name"], vals))
        if rows:
            panels.append((t, rows, _limits(report, "latency_p90_ms", t)))
    if not panels:
        return ""
    values = [v for _, rows, _ in panels for _, vals in rows for v in vals.values() if v is not None]
    end = _axis_end(values, [lim for *_, lims in panels for lim in lims])
    with matplotlib.rc_context(_RC):
        heights = [0.5 + 0.45 * len(rows) for _, rows, _ in panels]
        fig = Figure(figsize=(8.5, sum(heights) + 0.6))
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
        for ax, (target, rows, lims) in zip(axes, panels):
            for i, (name, v) in enumerate(rows):
                y = len(rows) - 1 - i
                lo, hi = v["min"] if v["min"] is not None else v["p50"], v["max"] if v["max"] is not None else v["p50"]
                ax.hlines(y, lo, hi, color=WHISKER, linewidth=1)
                p90 = v["p90"] if v["p90"] is not None else v["p50"]
                ax.add_patch(Rectangle((v["p50"], y - 0.25), max(p90 - v["p50"], 0), 0.5, facecolor=BOX, edgecolor=WHISKER))
                ax.plot([v["p50"]], [y], marker="D", color=BOX, markeredgecolor=WHISKER, markersize=7)
                if v["p99"] is not None:
                    ax.vlines(v["p99"], y - 0.3, y + 0.3, color=P99, linewidth=1.5)
            ax.set_yticks(range(len(rows)), [n for n, _ in rows][::-1])
            ax.set_ylim(-0.7, len(rows) - 0.3)
            ax.set_title(target, loc="left", fontsize=9)
            ax.grid(axis="x", color="#e3e6ec", linewidth=0.6)
            for lim in lims:
                _budget_line(ax, lim, end, f"p90 budget {format_ms(lim)}")
        axes[-1].set_xlim(0, end)
        axes[-1].xaxis.set_major_locator(MaxNLocator(8))
        axes[-1].xaxis.set_major_formatter(FuncFormatter(lambda x, _: _tick(format_ms(x)) if x else "0"))
        axes[-1].set_xlabel("latency (whiskers min–max · box p50–p90 · ◆ p50 · red tick p99)")
        return _svg(fig, "latency", "latency per target")


def size_svg(report: dict) -> str:
    """Horizontal bars of the artifact sizes (SI bytes), the size_mb budget(s) as dashed lines;
    "" when no build has an artifact."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    import matplotlib

    rows = [(b["name"], _num((b.get("convert") or {}).get("size_bytes"))) for b in report["builds"]]
    rows = [(n, s) for n, s in rows if s]
    if not rows:
        return ""
    lims = [lim * 1e6 for lim in _limits(report, "size_mb")]
    end = _axis_end([s for _, s in rows], lims)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(8.5, 0.9 + 0.45 * len(rows)))
        ax = fig.subplots()
        ys = list(range(len(rows)))[::-1]
        ax.barh(ys, [s for _, s in rows], height=0.6, color=BAR)
        for y, (_, s) in zip(ys, rows):
            ax.annotate(format_bytes(s), (s, y), xytext=(4, 0), textcoords="offset points", va="center")
        ax.set_yticks(ys, [n for n, _ in rows])
        for lim in lims:
            _budget_line(ax, lim, end, f"size budget {format_bytes(lim)}")
        ax.set_xlim(0, end)
        ax.xaxis.set_major_locator(MaxNLocator(8))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _tick(format_bytes(x)) if x else "0"))
        ax.set_xlabel("artifact size (1 kB = 1000 bytes)")
        ax.grid(axis="x", color="#e3e6ec", linewidth=0.6)
        return _svg(fig, "sizes", "artifact sizes")


def layers_svg(layers: list, metric: str = "psnr_db", name: str = "") -> str:
    """Per-layer METRIC in topological order as a line with markers; "" without values."""
    from matplotlib.figure import Figure
    import matplotlib

    vals = [(str(l.get("name") or l.get("layer")), _num(l.get(metric))) for l in layers if isinstance(l, dict)]
    vals = [(n, v) for n, v in vals if v is not None]
    if not vals:
        return ""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(8.5, 2.6))
        ax = fig.subplots()
        ax.plot(range(len(vals)), [v for _, v in vals], marker="o", color="#54a24b")
        ax.set_xticks(range(len(vals)), [n for n, _ in vals], rotation=30, ha="right")
        ax.set_ylabel(metric.replace("_db", " (dB)"))
        ax.set_ylim(bottom=0)
        ax.grid(color="#e3e6ec", linewidth=0.6)
        return _svg(fig, "layers", f"per-layer {metric} {name}".strip())
