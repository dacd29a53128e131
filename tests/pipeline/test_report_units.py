"""What the reports write, without running a pipeline: one unit convention (SI bytes,
significant-digit durations), the I/O column read from the artifact, "short by" for a minimum
budget, failing rows first, per-operator times consistent with the measured latency, and
`validate --per-layer` saying on the terminal which layers are not observable and why."""

from __future__ import annotations

import copy
import io
import re

import pytest

from edgekit import report_files
from edgekit.agent.op_profiles import ops_table
from edgekit.report import ops_rows, print_profile, print_run, print_validate
from edgekit.units import format_bytes, format_limit, format_mb, format_mib, format_ms, format_share, format_value, sig


def _console():
    from rich.console import Console

    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


@pytest.mark.parametrize("ms, text", [
    (0.000123, "0.123 µs"), (0.002023, "2.02 µs"), (0.16, "160 µs"), (0.99999, "1.00 ms"), (1, "1.00 ms"),
    (12.345, "12.3 ms"), (999.99, "1.00 s"), (2500, "2.50 s"), (0, "0 ms"), (None, "—"),
])
def test_durations_have_significant_digits_never_0_00_ms(ms, text):
    assert format_ms(ms) == text


def test_durations_below_a_millisecond_are_microseconds():
    for ms in (1e-4, 3.3e-3, 0.0456, 0.5, 0.999):
        text = format_ms(ms)
        assert text.endswith(" µs") and not text.startswith("0.00"), text
        assert float(text.split()[0]) == pytest.approx(ms * 1000, rel=5e-3)


@pytest.mark.parametrize("n, text", [
    (12, "12 B"), (999, "999 B"), (1000, "1.00 kB"), (45032, "45.0 kB"), (155_800, "156 kB"),
    (999_999, "1.00 MB"), (1_234_567, "1.23 MB"), (5e9, "5.00 GB"), (None, "—"),
])
def test_sizes_are_si(n, text):
    assert format_bytes(n) == text


def test_sizes_in_mb_and_mib_use_the_same_convention():
    assert format_mb(5) == "5.00 MB" and format_mb(0.045032) == "45.0 kB"
    assert format_mib(47.34375) == "49.6 MB"  # 47.34 MiB of RSS = 49.6 × 10^6 bytes
    assert format_value(0.1, "MB") == "100 kB" and format_value(0.0021, "ms") == "2.10 µs"
    assert format_value(31.234, "dB") == "31.2 dB" and format_limit(0.98) == "0.98" and format_limit(25, "dB") == "25 dB"
    assert sig(1234.4) == "1234" and sig(0.0020234) == "0.00202" and format_share(0.00001) == "<0.1%"


# -- run reports ---------------------------------------------------------------------------------

LAT = {"min": 0.0019, "p50": 0.002, "p90": 0.0021, "p99": 0.0037, "mean": 0.0021, "std": 0.0003, "max": 0.0043}
PROFILE = {"target": "host", "latency_ms": LAT, "peak_rss_mb": 47.34375, "emulated": False,
           "runtime": {"name": "ai_edge_litert", "version": "2.3.0"},
           "device": {"cpu": "AMD EPYC", "machine": "x86_64", "cores": 2, "os": "Debian GNU/Linux 12",
                      "python": "3.11.7", "runtimes": {"ai-edge-litert": "2.3.0", "numpy": "2.4.6"}}}


def _build(name, io_dtype, budgets, passed, size=45032):
    spec = {"name": "image", "shape": [1, 8, 8, 1], "dtype": io_dtype}
    return {"name": name, "options": {"to": "tflite", "quantize": "int8", "io_dtype": "float32"},  # the recipe default
            "status": "built", "error": None, "notes": [], "passed": passed, "budgets": budgets,
            "convert": {"size_bytes": size, "io_dtype": io_dtype, "inputs": [spec], "outputs": [dict(spec, name="logits")],
                        "parity": {"passed": True, "precision": "int8", "samples": 8,
                                   "outputs": [{"name": "logits", "psnr_db": 49.7}],
                                   "accuracy": {"reference": 0.977, "candidate": 0.975, "delta": -0.002}}},
            "profiles": [copy.deepcopy(PROFILE)]}


PSNR_FAIL = {"budget": "min_psnr_db", "limit": 60, "value": 49.7, "passed": False, "margin": -10.3, "unit": "dB"}
SIZE_FAIL = {"budget": "size_mb", "limit": 0.01, "value": 0.045032, "passed": False, "margin": -0.035032, "unit": "MB"}
SIZE_OK = dict(SIZE_FAIL, limit=5, passed=True, margin=4.954968)


def _report():
    return {"kind": "run", "model": "/p/models/digits.keras", "targets": ["host"], "passed": False,
            "interrupted": False, "edgekit": "0.1.0", "started": "now", "tools": {"keras": "3.15.1"},
            "builds": [_build("ok", "float32", [SIZE_OK], True), _build("q8", "int8", [SIZE_OK, PSNR_FAIL, SIZE_FAIL], False)]}


def test_a_failed_minimum_is_short_by_and_a_failed_maximum_over_by():
    assert report_files.budget_gap(PSNR_FAIL) == "short by 10.3 dB"
    assert report_files.budget_gap(SIZE_FAIL) == "over by 35.0 kB"
    assert report_files.budget_gap(SIZE_OK) == ""
    md = report_files.to_markdown(_report())
    assert "min_psnr_db: 49.7 dB (limit 60 dB, short by 10.3 dB)" in md
    assert "size_mb: 45.0 kB (limit 10.0 kB, over by 35.0 kB)" in md
    con, out = _console()
    print_run(con, dict(_report(), out="/o"))
    assert "short by 10.3 dB" in out.getvalue() and "over by 35.0 kB" in out.getvalue()


def test_io_column_is_read_from_the_artifact_not_the_recipe():
    rep = _report()
    assert report_files.io_dtypes(rep["builds"][1]) == "int8 → int8"
    html = report_files.to_html(rep)
    assert re.search(r'data-build="q8".*?data-field="io">int8 → int8<', html, re.S)
    no_io = dict(rep["builds"][1], convert=dict(rep["builds"][1]["convert"], inputs=[], outputs=[]))
    assert report_files.io_dtypes(no_io) == "int8"  # the manifest's io_dtype, not options.io_dtype
    assert report_files.io_dtypes(dict(no_io, convert=None)) == "—"


def test_failing_rows_come_first_and_the_page_names_machine_runtimes_accuracy():
    rep = _report()
    md = report_files.to_markdown(rep)
    assert md.index("| q8 |") < md.index("| ok |")
    assert md.index("❌ min_psnr_db") < md.index("✅ size_mb: 45.0 kB (limit 5.00 MB)", md.index("### q8"))
    html = report_files.to_html(rep)
    assert html.index('data-build="q8"') < html.index('data-build="ok"')
    assert "AMD EPYC" in html and "2 cores" in html and "ai_edge_litert 2.3.0" in html and "numpy 2.4.6" in html
    assert "97.5% (reference 97.7%, -0.20 points)" in html and "keras 3.15.1" in html
    assert "0.00 ms" not in html and "2.00 µs" in html and "49.6 MB" in html
    assert "<script" not in html and not re.search(r"(src|href)=.(https?:|//)", html)  # nothing to fetch


# -- per-operator times ----------------------------------------------------------------------------

def test_ops_table_leaves_out_the_cold_first_run_and_sums_one_run():
    # two operators, 5 instrumented runs each; the first run is cold (10 ms)
    rows = [("conv #1", "XNNPACK:conv", [10.0, 0.3, 0.3, 0.3, 0.3]), ("fc #1", "XNNPACK:fc", [1.0, 0.1, 0.1, 0.1, 0.1]),
            ("DELEGATE_CALL", "DELEGATE_CALL", [11.0, 0.41, 0.41, 0.41, 0.41])]
    t = ops_table(rows)
    assert t["runs"] == 4 and t["per_run_ms"] == pytest.approx(0.4)
    assert [r["share"] for r in t["by_type"]] == pytest.approx([0.75, 0.25])
    assert t["delegate_calls"]["total_ms"] == pytest.approx(0.41)  # the envelope agrees with its kernels' sum


def test_shown_operator_times_are_consistent_with_the_measured_latency():
    """The instrumented runs took 10× the timed ones: the table shows shares and those shares of
    the measured p50, which sum to it (not the instrumented 0.4 ms against a 0.04 ms latency)."""
    rows = [("conv #1", "XNNPACK:conv", [5.0] + [0.3] * 9), ("fc #1", "XNNPACK:fc", [1.0] + [0.1] * 9)]
    result = {"artifact": "m.pte", "format": "executorch", "size_bytes": 158_000, "runtime": {"name": "executorch"},
              "target": "host", "runs": 30, "warmup": 5, "threads": 2, "init_ms": 18.0, "first_inference_ms": 0.5,
              "latency_ms": dict(LAT, p50=0.04), "peak_rss_mb": 379.0, "device": {}, "warnings": [],
              "ops": ops_table(rows)}
    shown = ops_rows(result)
    assert sum(r["scaled_ms"] for r in shown) == pytest.approx(result["latency_ms"]["p50"])
    assert [r["scaled_text"] for r in shown] == ["30.0 µs", "10.0 µs"]
    con, out = _console()
    print_profile(con, result)
    text = out.getvalue()
    assert "as shares of the measured p50 40.0 µs" in " ".join(text.split())
    assert "shares from 9 separately instrumented runs (400 µs per run there: tracing slows each operator)" in text
    cells = re.findall(r"XNNPACK:\w+\s*│\s*\d+\s*│\s*([\d.]+)%\s*│\s*([\d.]+) µs", text)
    assert [(float(a), float(b)) for a, b in cells] == [(75.0, 30.0), (25.0, 10.0)]
    assert sum(float(b) for _, b in cells) / 1000 == pytest.approx(result["latency_ms"]["p50"], rel=0.01)
    assert "158 kB" in text and "397 MB" in text and "40.00 µs" in text  # 379 MiB of RSS in SI
    rep = _report()
    rep["builds"][0]["profiles"][0].update(ops=result["ops"], latency_ms=result["latency_ms"])
    html = report_files.to_html(rep)
    scaled = [float(v) for v in re.findall(r'data-field="scaled_ms" data-value="([^"]+)"', html)]
    assert sum(scaled) == pytest.approx(0.04) and "scaled to the measured p50 of 40.0 µs" in html


# -- validate --per-layer on the terminal ----------------------------------------------------------

def test_per_layer_terminal_says_what_is_not_observable_and_why():
    why = "inside a XnnpackBackend delegate: a black box at run time; compared in a portable twin"
    result = {
        "reference": {"origin": "net.py:Net", "framework": "torch"},
        "candidate": {"artifact": "m.pte", "format": "executorch", "precision": "fp32"},
        "data": {"samples": 4, "source": "random"}, "per_layer_samples": 4,
        "layers": [{"index": 0, "layer": "conv1", "op_type": "Conv2d → aten.convolution (portable twin)",
                    "shape": [1, 8, 8, 8], "psnr_db": 140.0, "cosine": 1.0, "max_abs": 1e-6, "diverged": False,
                    "observed": "portable twin"},
                   {"index": 1, "layer": "fc", "op_type": "Linear → XNNPACK delegate output (5 ops)",
                    "shape": [1, 10], "psnr_db": 120.0, "cosine": 1.0, "max_abs": 1e-6, "diverged": False,
                    "observed": "pte"}],
        "not_observable": [{"layer": "relu", "op_type": "ReLU", "reason": why},
                           {"layer": "drop", "op_type": "Dropout", "reason": "no operator of this module in the ETRecord graph"}],
        "worst_layers": ["fc", "conv1"], "first_divergence": None,
        "executorch": {"delegates": [{"backend": "XnnpackBackend", "ops": ["a", "b"], "modules": ["conv1", "relu", "fc"]}],
                       "inside_delegates": ["conv1", "relu"], "portable_twin": "used for the modules inside delegates"},
    }
    con, out = _console()
    print_validate(con, result)
    text = " ".join(out.getvalue().split())
    assert "2 layer(s) not observable in the candidate:" in text
    assert f"relu (ReLU): {why}" in text
    assert "drop (Dropout): no operator of this module in the ETRecord graph" in text
    assert "observed in" in text and "portable twin" in text
    assert "XnnpackBackend delegate of 2 op(s): conv1, relu, fc" in text
