"""report.html of a passing and a failing `edgekit run` of the bundled example, rendered in a real
headless Chromium (screenshots checked), and every number the page shows compared with
report.json: the page's number cells carry data-field/data-value, and their text must be what
edgekit.units writes for that report.json value."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from edgekit.units import format_bytes, format_limit, format_mib, format_ms, format_value
from tests.pipeline.test_run import EXAMPLE, _chromium

BAR, BOX = (0x4C, 0x78, 0xA8), (0xF5, 0x85, 0x18)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"pass": (report dict, out dir), "fail": ...}: the example as bundled, then the same project
    (the same artifacts, so their measurements are reused) with budgets that fail: size (a maximum:
    "over by"), PSNR (a minimum: "short by") and a p90 latency limit between the two builds'."""
    from tests.conftest import run_cli

    base = tmp_path_factory.mktemp("report-html")
    ok = base / "pass"
    shutil.copytree(EXAMPLE, ok, ignore=shutil.ignore_patterns("edgekit-out", "__pycache__"))
    r = run_cli("run", ok / "edgekit.yaml", "--json")
    assert r.exit_code == 0, r
    passing = r.json()
    bad = base / "fail"
    shutil.copytree(ok, bad)
    cfg = yaml.safe_load((bad / "edgekit.yaml").read_text())
    p90 = sorted(b["profiles"][0]["latency_ms"]["p90"] for b in passing["builds"])
    cfg["budgets"].update(size_mb=0.1, min_psnr_db=60, latency_p90_ms=(p90[0] + p90[-1]) / 2)
    (bad / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = run_cli("run", bad / "edgekit.yaml")
    assert r.exit_code == 1, r
    failing = json.loads((bad / "edgekit-out" / "report.json").read_text())
    return {"pass": (passing, ok / "edgekit-out"), "fail": (failing, bad / "edgekit-out")}


class Cells(HTMLParser):
    """Rows with data-build (and data-budget/data-target) → {field: (data-value, text)}, in page
    order per table id; plus the text of the whole page."""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.cell, self.text = {}, None, None, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = self.tables.setdefault(a.get("id") or a.get("class") + ":" + a.get("data-build", ""), [])
        elif tag == "tr" and "data-build" in a and self.table is not None:
            self.row = {"key": (a["data-build"], a.get("data-budget"), a.get("data-target") or None), "cells": {}}
            self.table.append(self.row)
        elif tag == "td" and self.row is not None and "data-field" in a:
            self.cell = [a["data-field"], a.get("data-value"), ""]

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            field, value, text = self.cell
            self.row["cells"][field] = (None if value is None else float(value), text)
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell[2] += data


def _parse(page: Path) -> Cells:
    p = Cells()
    p.feed(page.read_text())
    return p


def _io(convert: dict) -> str:
    ins = sorted({t["dtype"] for t in convert["inputs"]})
    outs = sorted({t["dtype"] for t in convert["outputs"]})
    return f"{'/'.join(ins)} → {'/'.join(outs)}"


def _assert_numbers_match(report: dict, page: Cells) -> None:
    builds = {b["name"]: b for b in report["builds"]}
    failing_first = [b["name"] for b in report["builds"] if not b["passed"]] + [b["name"] for b in report["builds"] if b["passed"]]
    assert [r["key"][0] for r in page.tables["matrix"]] == failing_first
    for row in page.tables["matrix"]:
        b = builds[row["key"][0]]
        c, cells = b["convert"], row["cells"]
        assert cells["size_bytes"] == (c["size_bytes"], format_bytes(c["size_bytes"]))
        assert cells["io"][1] == _io(c)  # what the artifact's manifest says, int8 → int8 for int8
        psnr = min(o["psnr_db"] for o in c["parity"]["outputs"])
        assert cells["psnr_db"][0] == pytest.approx(psnr) and format_value(psnr, "dB") in cells["psnr_db"][1]
        acc = c["parity"]["accuracy"]
        assert cells["accuracy"][0] == pytest.approx(acc["candidate"])
        assert cells["accuracy"][1].startswith(f"{100 * acc['candidate']:.1f}% (reference {100 * acc['reference']:.1f}%")
        assert cells["status"][1] == ("pass" if b["passed"] else "fail") + (" (cached)" if b["status"] == "cached" else "")
    shown = {r["key"]: r["cells"] for r in page.tables["budgets"]}
    expected = {(b["name"], v["budget"], v.get("target")): v for b in report["builds"] for v in b["budgets"]}
    assert set(shown) == set(expected)
    for key, v in expected.items():
        cells, unit = shown[key], v["unit"]
        assert cells["value"] == (pytest.approx(v["value"]), format_value(v["value"], unit)), key
        assert cells["limit"] == (pytest.approx(v["limit"]), format_limit(v["limit"], unit)), key
        gap = format_value(abs(v["value"] - v["limit"]), unit)
        assert cells["verdict"][1] == ("pass" if v["passed"] else
                                       f"FAIL: {'short by' if v['value'] < v['limit'] else 'over by'} {gap}"), key
    for name in builds:  # within a build, failing budgets first
        verdicts = [r["cells"]["verdict"][1] for r in page.tables["budgets"] if r["key"][0] == name]
        assert verdicts == sorted(verdicts, key=lambda t: t == "pass")
    lat = {r["key"][::2]: r["cells"] for r in page.tables["latency"]}
    for b in report["builds"]:
        for prof in b["profiles"]:
            cells = lat[(b["name"], prof["target"])]
            for k in ("p50", "p90", "p99"):
                assert cells[k] == (pytest.approx(prof["latency_ms"][k]), format_ms(prof["latency_ms"][k]))
            assert cells["peak_rss_mb"] == (pytest.approx(prof["peak_rss_mb"]), format_mib(prof["peak_rss_mb"]))
    text = " ".join("".join(page.text).split())
    prof = report["builds"][0]["profiles"][0]
    dev = prof["device"]
    for part in (dev["cpu"], f"{dev['cores']} cores", dev["os"], f"{prof['runtime']['name']} {prof['runtime']['version']}"):
        assert part in text
    assert "0.00 ms" not in text and " KB" not in text


def _screenshot(page: Path, tmp: Path, name: str) -> dict:
    from PIL import Image

    shot = tmp / f"{name}.png"
    p = _chromium(page.as_uri(), tmp, "--window-size=1200,2000", f"--screenshot={shot}")
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    assert console == [], console  # no errors, no failed loads (the page must not touch the network)
    return {c: n for n, c in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)}


def _svg(html: str, cls: str) -> str:
    m = re.search(rf'<svg class="plot {cls}".*?</svg>', html, re.S)
    assert m, f"no {cls} plot"
    return m.group(0)


def test_passing_report_in_chromium_and_against_report_json(runs, tmp_path):
    report, out = runs["pass"]
    assert json.loads((out / "report.json").read_text()) == report
    page = out / "report.html"
    _assert_numbers_match(report, _parse(page))
    count = _screenshot(page, tmp_path, "pass")
    assert count.get(BAR, 0) > 500 and count.get(BOX, 0) > 20  # size bars and latency boxes drawn
    html = page.read_text()
    assert "All budgets hold" in html
    lat = _svg(html, "latency")
    # real ticks in the report's units, and the 20 ms budget far beyond µs latencies marked as off scale
    assert len(re.findall(r">\d+(\.\d+)? µs</text>", lat)) >= 3
    assert "p90 budget 20.0 ms: off scale →" in lat


def test_failing_report_in_chromium_and_against_report_json(runs, tmp_path):
    report, out = runs["fail"]
    # the artifacts are the same bytes: their measurements are reused, so the latency limit between the
    # two builds' p90 splits them
    assert not report["passed"] and all(p.get("cached") for b in report["builds"] for p in b["profiles"])
    page = out / "report.html"
    cells = _parse(page)
    _assert_numbers_match(report, cells)
    verdicts = {r["key"][:2]: r["cells"]["verdict"][1] for r in cells.tables["budgets"]}
    assert verdicts[("int8", "min_psnr_db")].startswith("FAIL: short by")
    assert verdicts[("fp32", "size_mb")].startswith("FAIL: over by") and verdicts[("int8", "size_mb")] == "pass"
    count = _screenshot(page, tmp_path, "fail")
    assert count.get(BAR, 0) > 500 and count.get(BOX, 0) > 20
    html = page.read_text()
    assert "Budgets failed" in html
    for cls, budget in (("latency", "p90 budget"), ("sizes", "size budget 100 kB")):
        svg = _svg(html, cls)
        assert budget in svg and "off scale" not in svg  # within the data's range: drawn as a line
        assert re.search(r"stroke-dasharray[^\"]*stroke: #b3261e", svg), f"no dashed budget line in the {cls} plot"
    md = (out / "report.md").read_text()
    assert "short by" in md and "over by" in md
    assert md.index("| int8 |") < md.index("| fp32 |") or not report["builds"][0]["passed"]
