"""Parsers for what the device-side tools print (pure functions, no imports of frameworks),
one module per tool, all importable from here:

- `parse_benchmark_model(text)` (edgekit.tool_output_benchmark_model): LiteRT/TFLite
  `benchmark_model` from the CLI, `adb shell`, or the Android benchmark app's logcat lines:
  µs statistics, init / first inference, memory footprint, delegate coverage (XNNPACK, NNAPI,
  GPU), op-profiling tables; several runs (one per delegate) split into `runs`.
- `parse_edgetpu_compiler(text)` (edgekit.tool_output_edgetpu): `edgetpu_compiler` stdout and
  its `_edgetpu.log` table: ops on the Edge TPU / on the CPU and why, on-chip memory used /
  remaining, off-chip streaming, subgraphs.
- `parse_executor_runner(text)` (edgekit.tool_output_executorch): ExecuTorch's
  `executor_runner`: success, timings, planned buffers, outputs, missing kernels.

`benchmark_to_latency_ms` and `executor_runner_to_latency_ms` turn a tool's timings into
edgekit's latency_ms keys (edgekit.tool_output_common.latency_ms). Times are returned in the
unit the tool prints (µs for benchmark_model, ms for executor_runner), sizes in bytes or MB as
named.
"""

from __future__ import annotations

from .tool_output_benchmark_model import (benchmark_to_latency_ms, parse_benchmark_model,  # noqa: F401
                                          parse_stats_line, strip_logcat)
from .tool_output_edgetpu import parse_edgetpu_compiler, parse_size  # noqa: F401
from .tool_output_executorch import executor_runner_to_latency_ms, parse_executor_runner  # noqa: F401

__all__ = ["benchmark_to_latency_ms", "executor_runner_to_latency_ms", "parse_benchmark_model",
           "parse_edgetpu_compiler", "parse_executor_runner", "parse_size", "parse_stats_line", "strip_logcat"]
