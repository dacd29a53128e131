"""Parsers of benchmark_model / GPU delegate / edgetpu_compiler output, run on the recorded real
outputs in fixtures/tool-outputs/ (verbatim), and on the XNNPACK line the real runtime prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.tool_output import (benchmark_to_latency_ms, parse_benchmark_model, parse_edgetpu_compiler,
                                 parse_size, parse_stats_line, strip_logcat)

OUT = Path(__file__).parent / "fixtures" / "tool-outputs"


def read(name: str) -> str:
    return (OUT / name).read_text()


def test_old_format_two_runs_cpu_and_nnapi_peak_memory():
    r = parse_benchmark_model(read("benchmark_model_android_nnapi.txt"))
    cpu, nnapi = r["runs"]
    assert cpu["inference"] == {"count": 50, "first": 249042, "curr": 250889, "min": 247067, "max": 254474,
                                "avg": 249684, "std": 1442}
    assert cpu["timings_us"] == {"init": 16242, "first_inference": 360262, "warmup_avg": 304586,
                                 "inference_avg": 249684}
    assert cpu["memory_mb"] == {"init": 4.92969, "overall": 138.809, "kind": "peak"}
    assert nnapi["inference"]["avg"] == 156669 and nnapi["timings_us"]["init"] == 404292
    assert "memory_mb" not in nnapi  # that run printed only the note
    assert "warmup" not in cpu  # that build printed only the timed stats line


def test_newer_format_logcat_prefix_percentiles_delta_memory():
    r = parse_benchmark_model(read("benchmark_model_logcat_percentiles.txt"))
    (run,) = r["runs"]
    assert run["warmup"]["count"] == 4 and run["warmup"]["p95"] == 235158
    assert run["inference"] == {"count": 25, "first": 187533, "curr": 140990, "min": 140071, "max": 195121,
                                "avg": 145528, "std": 13583, "p5": 140545, "median": 141253, "p95": 187533}
    assert run["memory_mb"] == {"init": 54.2852, "overall": 73.4102, "kind": "delta"}
    lat = benchmark_to_latency_ms(run["inference"])
    assert lat["p50"] == pytest.approx(141.253) and lat["mean"] == pytest.approx(145.528) and lat["p90"] is None


def test_scientific_notation_and_op_profiling_tables():
    r = parse_benchmark_model(read("benchmark_model_op_profiling.txt"))
    (run,) = r["runs"]
    assert run["inference"]["avg"] == pytest.approx(2.95034e6)
    assert run["timings_us"]["warmup_avg"] == pytest.approx(3.51239e6)
    assert run["warmup"] == {"count": 1, "curr": 3512391}
    assert r["init_session_ms"] == pytest.approx(17.187)
    prof = r["op_profile"]
    assert prof["init"]["run_order"][0]["node_type"] == "AllocateTensors"
    runs = prof["runs"]
    assert runs["nodes_executed"] == 31 and len(runs["run_order"]) == 31 and len(runs["top_by_time"]) == 10
    first = runs["run_order"][0]
    assert first["node_type"] == "CONV_2D" and first["avg_ms"] == pytest.approx(60.957)
    assert first["name"] == "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0" and first["times_called"] == 1
    by_type = {row["node_type"]: row for row in runs["by_node_type"]}
    assert by_type["CONV_2D"]["count"] == 15 and by_type["DEPTHWISE_CONV_2D"]["avg_pct"] == pytest.approx(10.065)
    assert runs["timings_us"]["avg"] == pytest.approx(2.9499e6)
    # the profiler's own "Timings (microseconds): count=50" must not be taken for a benchmark pass
    assert len(r["runs"]) == 1


@pytest.mark.parametrize("name,gpu,cpu,unsupported", [
    ("gpu_delegate_partial_new.txt", 123, 156, {"DEQUANTIZE", "TRANSPOSE_CONV"}),
    ("gpu_delegate_partial_old.txt", 0, 81, {"MAXIMUM", "MEAN"}),
])
def test_gpu_delegate_coverage_both_wordings(name, gpu, cpu, unsupported):
    r = parse_benchmark_model(read(name))
    assert r["gpu"]["gpu_ops"] == gpu and r["gpu"]["cpu_ops"] == cpu
    assert set(r["gpu"]["unsupported"]) == unsupported


def test_logcat_prefix_variants():
    assert strip_logcat("I tflite  : count=4 first=1") == "count=4 first=1"
    assert strip_logcat("04-01 12:00:00.123  1234  1234 I tflite  : Init: 1") == "Init: 1"
    assert strip_logcat("I/tflite  ( 1234): count=2") == "count=2"
    assert parse_stats_line("I tflite  : count=2 first=1e3 avg=1.5e+03") == {"count": 2, "first": 1000.0, "avg": 1500.0}
    assert parse_stats_line("Loaded model x") is None


def test_info_prefixed_lines_and_replacing_line_xnnpack():
    r = parse_benchmark_model(read("benchmark_model_info_prefix_xnnpack.txt"))
    assert r["delegation"] == [{"replaced": 49, "total": 49, "delegate": "TfLiteXNNPackDelegate", "partitions": 1}]
    (run,) = r["runs"]
    assert run["warmup"] == {"count": 1, "curr": 670083, "p5": 670083, "median": 670083, "p95": 670083}
    assert run["inference"]["median"] == 576856 and run["inference"]["max"] == 2270688
    assert run["timings_us"]["init"] == 102320 and r["init_session_ms"] == pytest.approx(102.32)
    assert run["memory_mb"] == {"init": 98.0977, "overall": 99.2031, "kind": "delta"}


def test_info_prefixed_gpu_delegate_takes_whole_graph():
    r = parse_benchmark_model(read("benchmark_model_info_prefix_gpu.txt"))
    assert r["delegation"][0]["delegate"] == "TfLiteGpuDelegateV2" and r["delegation"][0]["replaced"] == 49
    assert r["runs"][0]["inference"]["avg"] == 309350 and r["runs"][0]["warmup"]["count"] == 2


def test_edgetpu_compiler_partial_stdout_and_log():
    r = parse_edgetpu_compiler(read("edgetpu_compiler_partial.txt"))
    assert r["compiler_version"] == "16.0.384591198" and r["compiled"] is True and r["compile_ms"] == 1524
    assert (r["total_ops"], r["tpu_ops"], r["cpu_ops"], r["subgraphs"]) == (267, 264, 3, 1)
    assert r["on_chip_used_bytes"] == parse_size("4.21MiB") == round(4.21 * 2**20)
    assert r["off_chip_streaming_bytes"] == 0
    assert r["input_model"] == "efficientdet_coral_v2.tflite" and r["output_model"].endswith("_edgetpu.tflite")
    assert r["cpu_op_types"] == ["CUSTOM"]
    assert r["cpu_ops_by_reason"] == {"Operation is working on an unsupported data type": ["CUSTOM"]}
    assert {o["op"]: o["count"] for o in r["ops"] if o["mapped"]} == {"ADD": 42, "RESHAPE": 10, "CONCATENATION": 2}


def test_edgetpu_compiler_unspecified_limitation_and_off_chip_streaming():
    r = parse_edgetpu_compiler(read("edgetpu_compiler_unspecified.txt"))
    assert (r["total_ops"], r["tpu_ops"], r["cpu_ops"]) == (141, 138, 3)
    assert r["on_chip_remaining_bytes"] == round(1.75 * 1024)
    assert r["off_chip_streaming_bytes"] == round(6.63 * 2**20) and r["off_chip_streaming_bytes"] > 0
    assert r["cpu_op_types"] == ["CONCATENATION", "QUANTIZE", "RESHAPE"]
    assert list(r["cpu_ops_by_reason"]) == ["Operation is otherwise supported, but not mapped due to some "
                                            "unspecified limitation"]
    assert r["all_others_mapped"] is True and r["tpu_share"] == pytest.approx(138 / 141)


# -- ExecuTorch executor_runner (recorded real outputs) -------------------------------------------

def test_executor_runner_timed_success_outputs_and_etdump():
    from edgekit.tool_output import executor_runner_to_latency_ms, parse_executor_runner

    r = parse_executor_runner(read("executor_runner_etdump_xnnpack.txt"))
    assert r["success"] is True and r["method"] == "forward" and r["threads"] == 1
    assert r["model_file"] == "model/linear_model_f32.pte" and r["planned_buffers"] == [2112]
    assert (r["executions"], r["total_ms"]) == (1, pytest.approx(2.904883))
    assert r["outputs"] == [{"index": 0, "sizes": [1, 256]}]  # the "OutputX 0:" spelling of some builds
    assert r["etdump"] == "model/linear_model_f32.etdump" and r["errors"] == []
    lat = executor_runner_to_latency_ms(r)
    assert lat["mean"] == pytest.approx(2.904883) and lat["p50"] is None  # a total only: no percentiles


def test_executor_runner_older_build_without_timing():
    from edgekit.tool_output import executor_runner_to_latency_ms, parse_executor_runner

    r = parse_executor_runner(read("executor_runner_old_no_timing.txt"))
    assert r["success"] is True and r["model_file"] == "add.pte" and r["planned_buffers"] == [48]
    assert r["outputs"] == [{"index": 0, "sizes": [1]}] and "total_ms" not in r and "executions" not in r
    assert executor_runner_to_latency_ms(r)["mean"] is None


def test_executor_runner_failures_are_not_success():
    """No recorded real failure log of executor_runner itself: the "Missing operator" line is
    verbatim from pytorch/executorch#1287 (Android logcat), the fatal line follows
    executor_runner.cpp's ET_CHECK_MSG format string."""
    from edgekit.tool_output import parse_executor_runner

    log = ("I 00:00:00.000526 executorch:executor_runner.cpp:82] Model file add.pte is loaded.\n"
           "11-24 09:35:11.099: I/ETLOG(3388): Missing operator: [4] aten::native_dropout.out\n"
           "F 00:00:00.001100 executorch:executor_runner.cpp:160] In function main(), assert failed "
           "(method.ok()): Loading of method forward failed with status 0x14\n")
    r = parse_executor_runner(log)
    assert r["success"] is False and r["status"] == "0x14" and r["missing_ops"] == ["aten::native_dropout.out"]
    assert len(r["errors"]) == 1 and "0x14" in r["errors"][0]


def test_profile_table_renders_benchmark_model_latency_without_percentiles():
    """benchmark_model prints no p90/p99 (and sometimes no init time): the profile table shows
    "—" for them instead of crashing the command (it crashed with a TypeError, --json too)."""
    import io

    from rich.console import Console

    from edgekit.report import print_profile

    parsed = parse_benchmark_model(read("benchmark_model_info_prefix_xnnpack.txt"))
    lat = benchmark_to_latency_ms(parsed["runs"][0]["inference"])
    assert lat["p90"] is None and lat["p50"] > 0
    result = {"artifact": "m.tflite", "format": "tflite", "size_bytes": 1000, "runtime": {"name": "benchmark_model"},
              "target": "adb:emulator-5554", "runs": 50, "warmup": 1, "threads": 4, "latency_ms": lat,
              "init_ms": None, "first_inference_ms": None, "peak_rss_mb": None, "device": {}, "warnings": []}
    out = io.StringIO()
    print_profile(Console(file=out, width=160), result)
    assert "—" in out.getvalue() and f"{lat['p50']:.4g}" in out.getvalue()


def test_parsers_take_linear_time_on_garbage_lines():
    """Found by fuzzing: a benchmark_model log line of 200,000 digits kept the number patterns
    busy for minutes (quadratic backtracking). Lines no tool prints (over MAX_LINE) are skipped."""
    import time

    from edgekit.tool_output import parse_edgetpu_compiler, parse_executor_runner

    garbage = "Inference timings in us: Init: " + "1" * 200_000 + ", First\n" + "x " + "9" * 100_000 + " ms\n"
    for parse in (parse_benchmark_model, parse_edgetpu_compiler, parse_executor_runner):
        t0 = time.perf_counter()
        parse(garbage + read("benchmark_model_info_prefix_xnnpack.txt"))
        assert time.perf_counter() - t0 < 2.0, parse.__name__
    assert parse_benchmark_model(garbage + read("benchmark_model_info_prefix_xnnpack.txt"))["runs"]  # the real lines still parse
