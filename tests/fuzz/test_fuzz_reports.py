"""Fuzz what edgekit reads back from JSON files: `edgekit report REPORT.json` (load_report, then
each renderer: Markdown, HTML, JSON) and an artifact's manifest (edgekit.artifacts.read_manifest).
Inputs: a real-shaped run report with keys removed, values retyped (null, strings, huge or
non-finite numbers, lists for objects), builds duplicated, and its text cut short, nested deeply
or replaced. Contract: load_report returns a report every renderer renders, or raises BadInput;
read_manifest returns a dict or None and never raises.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from edgekit import report_files
from edgekit.artifacts import read_manifest
from tests.fuzz._fuzz import mutated, outcome, tiers

LAT = {"min": 1.0, "p50": 1.2, "p90": 1.5, "p99": 2.0, "mean": 1.3, "std": 0.2, "max": 2.5}
PROFILE = {"schema_version": 1, "kind": "profile", "target": "host", "artifact": "fp32/model.tflite",
           "latency_ms": LAT, "init_ms": 3.0, "first_inference_ms": 2.0, "peak_rss_mb": 120.5, "size_bytes": 53000,
           "threads": 1, "runs": 50, "delegation": None, "device": {"machine": "x86_64"}, "emulated": False}
PARITY = {"passed": True, "precision": "fp32", "samples": 16, "random_inputs": False, "thresholds": {"min_psnr_db": 60},
          "outputs": [{"name": "probs", "max_abs": 1e-6, "mean_abs": 1e-7, "cosine": 1.0, "psnr_db": 120.0,
                       "passed": True}],
          "layers": [{"name": "conv1", "psnr_db": 90.0}, {"name": "fc1", "psnr_db": 80.0}]}
CONVERT = {"schema_version": 1, "kind": "convert", "artifact": "fp32/model.tflite", "format": "tflite",
           "size_bytes": 53000, "recipe": "none", "io_dtype": "float32", "inputs": [], "outputs": [],
           "quantization": {"recipe": "none"}, "parity": PARITY}
BUDGET = {"budget": "latency_p90_ms", "target": "host", "limit": 20, "value": 1.5, "passed": True, "margin": 18.5,
          "unit": "ms", "meaning": "p90 latency"}
REPORT = {
    "schema_version": 1, "kind": "run", "pipeline": "/p/edgekit.yaml", "model": "/p/models/digits.keras",
    "targets": ["host", "ssh://pi@rpi"], "passed": False, "interrupted": False, "not_run": [], "failed_budgets": 1,
    "edgekit": "0.9.0", "started": "2026-11-29T16:00:00Z",
    "builds": [
        {"name": "fp32", "options": {"to": "tflite", "quantize": "none", "io_dtype": "float32"}, "status": "built",
         "error": None, "convert": CONVERT, "profiles": [PROFILE, {"target": "ssh://pi@rpi", "error": {
             "message": "cannot connect", "hint": "check", "exit_code": 4}}],
         "budgets": [BUDGET, dict(BUDGET, budget="size_mb", target=None, limit=0.01, value=0.053, passed=False,
                                  margin=-0.043, unit="MB")],
         "passed": False, "notes": ["a note"]},
        {"name": "int8", "options": {"to": "tflite", "quantize": "int8", "io_dtype": "int8"}, "status": "failed",
         "error": {"message": "no calibration data", "hint": "pass calibration:", "exit_code": 2}, "convert": None,
         "profiles": [], "budgets": [], "passed": False},
        {"name": "cached", "options": {"to": "tflite", "quantize": "fp16", "io_dtype": "float32"}, "status": "cached",
         "convert": dict(CONVERT, parity=None), "profiles": [dict(PROFILE, emulated=True)], "budgets": [],
         "passed": True},
    ],
}
WEIRD = [None, True, 0, -1, 1.5, float("nan"), float("inf"), -float("inf"), 10 ** 30, "", "x", "∞", [], {}, [1, "a"],
         {"a": None}, "fp32/../../etc/passwd", "<script>alert(1)</script>"]


def _paths(node, at=()):
    """Every (path, value) inside NODE (dicts and lists)."""
    yield at, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, at + (i,))


PATHS = [p for p, _ in _paths(REPORT) if p]


@st.composite
def damaged_report(draw) -> dict:
    """REPORT with 1..6 of: a key removed, a value retyped, a list emptied or an item repeated."""
    r = copy.deepcopy(REPORT)
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(PATHS))
        parent = r
        try:
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):  # an earlier step retyped it to a string
            continue
        op = draw(st.sampled_from(["remove", "retype", "retype", "dup"]))
        if op == "remove":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif op == "retype":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(WEIRD) | st.floats() | st.text(max_size=8)))
        elif op == "dup" and isinstance(parent[path[-1]], list) and parent[path[-1]]:
            parent[path[-1]] = parent[path[-1]] * draw(st.integers(2, 3))
    return r


def report_text():
    base = json.dumps(REPORT)
    return st.one_of(
        damaged_report().map(json.dumps),
        damaged_report().map(lambda r: json.dumps(r, indent=2)).map(lambda t: t.encode()).flatmap(mutated).map(
            lambda b: b.decode("utf-8", "replace")),
        st.integers(0, len(base)).map(lambda n: base[:n]),
        st.sampled_from([("[", 100000), ('{"a":', 50000), ("1", 5000), ("NaN", 1), ('"run"', 1), ("null", 1),
                         ("{}", 1), ('{"kind": "run", "builds": {}}', 1), ('{"kind": "run", "builds": [1]}', 1)]).map(
            lambda t: t[0] * t[1]),  # deep nesting, a 5000-digit number, JSON that is no report
        st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
                         ["kind", "builds", "model", "name", "options", "profiles", "budgets", "status"]), c,
                         max_size=4), max_leaves=12).map(json.dumps),
    )


def _render_all(path: Path):
    report = report_files.load_report(path)
    return [render(report) for render in (report_files.to_markdown, report_files.to_html, report_files.to_json)]


def check_report(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "report.json"
        p.write_text(text, errors="surrogatepass")
        kind, got = outcome("report_files.load_report+render", _render_all, p)
        if kind == "ok":
            assert all(isinstance(t, str) and t for t in got)


def check_manifest(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "model.tflite"
        p.write_bytes(b"")
        Path(d, "model.tflite.json").write_text(text, errors="surrogatepass")
        kind, got = outcome("artifacts.read_manifest", read_manifest, p)
        assert kind == "ok" and (got is None or isinstance(got, dict)), (kind, got)


def _without(path: tuple, value=KeyError) -> str:
    """REPORT as JSON with the field at PATH removed (or set to VALUE)."""
    r = copy.deepcopy(REPORT)
    parent = r
    for k in path[:-1]:
        parent = parent[k]
    if value is KeyError:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(r)


# A report that loads is rendered to HTML with matplotlib plots (~1 s): fewer examples than elsewhere.
test_report, test_report_slow = tiers(check_report, slow=600, fast=60, case=report_text(), examples=[
    "[" * 100000,  # RecursionError in json.loads
    # fields the renderers read that load_report did not check (KeyError/TypeError mid-render)
    _without(("builds", 0, "profiles", 0, "latency_ms", "min")),
    _without(("builds", 0, "profiles", 0, "latency_ms")),
    _without(("builds", 0, "budgets", 0, "value")),
    _without(("builds", 0, "options", "io_dtype")),
    _without(("builds", 0, "convert", "parity", "outputs", 0, "psnr_db"), "high"),
    _without(("builds", 1, "error"), "failed"),
])
test_manifest, test_manifest_slow = tiers(check_manifest, slow=500, case=report_text(), examples=[
    "[" * 100000,  # RecursionError in json.loads
    "[1, 2]",  # a list: callers do `(read_manifest(p) or {}).get(...)`
])
