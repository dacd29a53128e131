"""Fuzz the parsers of device-side tools' output (edgekit.tool_output): text from a board or a
phone may be cut short, interleaved, prefixed or garbled, and a parser must still return what it
can read (a dict, possibly partial or empty) — never raise. Seeds: the real recordings in
tests/fixtures/tool-outputs."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import strategies as st

from edgekit.tool_output import (benchmark_to_latency_ms, executor_runner_to_latency_ms, parse_benchmark_model,
                                 parse_edgetpu_compiler, parse_executor_runner)
from tests.fuzz._fuzz import mutated_text, outcome, tiers

RECORDED = Path(__file__).parents[1] / "fixtures" / "tool-outputs"
SEEDS = {p.name: p.read_text() for p in sorted(RECORDED.glob("*.txt"))}


def seeds(prefix: str) -> list[str]:
    return [t for n, t in SEEDS.items() if n.startswith(prefix)]


def text_for(*prefixes: str):
    """Damaged recordings of these tools (mostly), other tools' recordings, or any text."""
    own = [t for p in prefixes for t in seeds(p)]
    return st.one_of(
        st.sampled_from(own).flatmap(mutated_text),
        st.sampled_from(own).flatmap(mutated_text).flatmap(mutated_text),
        st.sampled_from(list(SEEDS.values())).flatmap(mutated_text),
        st.text(max_size=400),
    )


def _never_raises(parser: str, parse, text: str) -> dict:
    kind, parsed = outcome(parser, parse, text)
    assert kind == "ok", f"{parser} raised {parsed!r} on text (it must return what it can read)"
    assert isinstance(parsed, dict)
    return parsed


def _latency_ok(lat: dict):
    assert set(lat) == {"min", "p50", "p90", "p99", "mean", "std", "max"}
    assert all(v is None or isinstance(v, float) for v in lat.values()), lat


def check_benchmark_model(text):
    """parse_benchmark_model and benchmark_to_latency_ms on each run it found."""
    parsed = _never_raises("tool_output.benchmark_model", parse_benchmark_model, text)
    for run in parsed["runs"]:
        for key in ("inference", "warmup"):
            if key in run:
                _latency_ok(outcome("tool_output.benchmark_to_latency_ms", benchmark_to_latency_ms, run[key])[1])


def check_edgetpu_compiler(text):
    parsed = _never_raises("tool_output.edgetpu_compiler", parse_edgetpu_compiler, text)
    for key in ("tpu_share",):
        assert key not in parsed or isinstance(parsed[key], float)


def check_executor_runner(text):
    """parse_executor_runner and executor_runner_to_latency_ms on what it found."""
    parsed = _never_raises("tool_output.executor_runner", parse_executor_runner, text)
    kind, lat = outcome("tool_output.executor_runner_to_latency_ms", executor_runner_to_latency_ms, parsed)
    assert kind == "ok"
    _latency_ok(lat)
    assert all(v is None or not math.isnan(v) or k == "std" for k, v in lat.items()), lat


BIG = "1" * 5000  # over Python's 4300-digit limit of int(str)

test_benchmark_model, test_benchmark_model_slow = tiers(
    check_benchmark_model, slow=1500, case=text_for("benchmark_model", "gpu_delegate"),
    examples=["count=1e400 first=1 avg=2", f"Replacing {BIG} out of 2 node(s) with delegate (X)",
              f"{BIG} operations will run on the GPU, and the remaining 1 operations will run on the CPU",
              "Operator-wise Profiling Info for Regular Benchmark Runs:\nNumber of nodes executed: " + BIG,
              f"count={BIG} avg=1",
              # a profiling block cut short before the next one began (KeyError: 'run_order')
              "Profiling Info for Benchmark Initialization:\n=== Run Order ===\n\t[node type]\t[first]\n"
              "Operator-wise Profiling Info for Regular Benchmark Runs:\n\tCONV\t1.0"])
test_edgetpu_compiler, test_edgetpu_compiler_slow = tiers(
    check_edgetpu_compiler, slow=1500, case=text_for("edgetpu_compiler"),
    examples=["Input size: 1e999MiB", f"CONV_2D {BIG} Mapped to Edge TPU", f"Model compiled successfully in {BIG} ms",
              f"Total number of operations: {BIG}"])
test_executor_runner, test_executor_runner_slow = tiers(
    check_executor_runner, slow=1500, case=text_for("executor_runner"),
    examples=["Iteration 1 of 2: 1e999 ms", f"Model executed successfully {BIG} time(s) in 1 ms.",
              f"Output 0: tensor(sizes=[{BIG}])", f"Setting up planned buffer 0, size {BIG}",
              "Model executed successfully 1 time(s) in 1e999 ms."])
