"""Typed results of the Python API: dataclasses mirroring `$defs` in schemas/report.schema.json.

`edgekit.convert`, `edgekit.validate`, `edgekit.profile` and `edgekit.run` return a
`ConvertResult`, `ValidateResult`, `ProfileResult` and `RunReport`. Each one is two things at
once, so that no caller of the old dict API breaks:

- a dataclass with typed attributes for the keys the schema makes stable
  (`result.parity.outputs[0].psnr_db`), nested objects typed too (`Parity`, `TensorInfo`,
  `LatencyStats`, ...), and every other key kept, in order, in the read-only `extra` mapping;
- a `dict` whose items are exactly the JSON object (`result["parity"]["passed"]`,
  `json.dumps(result)`, `result == json.loads(text)` all work as before).

`to_dict()` returns the plain JSON object (fresh dicts and lists, no typed objects) and equals
the dict the underlying function returned; `Cls.from_dict(d)` reads one back (a report.json
from disk, say). Unknown keys are never dropped, so the schema can grow keys
(`schema_version` stays 1 while objects only gain keys) without this module changing.

Write through attributes (`result.warnings = [...]`) or items (`result["note"] = "x"`); both
keep the two views in step. `extra` itself is read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .record import Record

__all__ = [
    "Record", "TensorInfo", "OutputParity", "Accuracy", "Parity", "Delegation", "QuantizationSummary",
    "ConvertResult", "ValidateResult", "LatencyStats", "ProfileResult", "ErrorInfo", "ProfileError",
    "BudgetVerdict", "BuildResult", "RunReport",
]


# -- $defs/tensor, $defs/outputMetrics, $defs/parity, $defs/delegation -------------------------

@dataclass(eq=False, kw_only=True)
class TensorInfo(Record):
    """`$defs/tensor`: one input or output of a model or artifact.

    `shape` lists the dimensions (None for a dynamic one); `dtype` is numpy's name
    ("float32", "int8", ...); `scale` and `zero_point` are present for quantized integer I/O
    (real = scale × (q − zero_point)).
    """

    _REQUIRED = ("name", "shape", "dtype")
    name: str
    shape: list[int | None]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class OutputParity(Record):
    """`$defs/outputMetrics`: the metrics of one output, reference vs candidate.

    Definitions (and what "good" is) live in edgekit/metrics.py: `max_abs`/`mean_abs` absolute
    differences in the output's units, `cosine` similarity, `psnr_db` = 20·log10(max|ref| /
    RMSE) in dB, `snr_db`, `top1_agreement`/`top5_agreement` fractions in [0, 1] for
    classifier outputs. `failures` names each threshold the output missed.
    """

    _REQUIRED = ("name", "max_abs", "mean_abs", "cosine", "psnr_db", "passed")
    name: str
    max_abs: float
    mean_abs: float
    cosine: float
    psnr_db: float
    passed: bool
    candidate_name: str | None = None
    max_rel: float | None = None
    rmse: float | None = None
    snr_db: float | None = None
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    failures: list[str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class Accuracy(Record):
    """`$defs/parity/accuracy`: task accuracy (fraction in [0, 1]) of both models on labelled data."""

    _REQUIRED = ("reference", "candidate", "delta")
    reference: float
    candidate: float
    delta: float
    output: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class Parity(Record):
    """`$defs/parity`: the verdict of running reference and candidate on the same samples.

    `precision` names the threshold preset (edgekit/parity.py PRESETS, overridable);
    `thresholds` holds the values applied; `random_inputs` true means the samples were random
    (plumbing proven, not accuracy).
    """

    _REQUIRED = ("passed", "precision", "samples", "random_inputs", "thresholds", "outputs")
    _NESTED = {"accuracy": lambda d: Accuracy.from_dict(d)}
    _LISTS = {"outputs": lambda d: OutputParity.from_dict(d)}
    passed: bool
    precision: str
    samples: int
    random_inputs: bool
    thresholds: dict[str, float]
    outputs: list[OutputParity]
    accuracy: Accuracy | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class Delegation(Record):
    """`$defs/delegation`: how much of the graph a delegate (XNNPACK, Edge TPU) took."""

    backend: str | None = None
    delegated_ops: int | None = None
    total_ops: int | None = None
    partitions: int | None = None
    not_delegated: list | None = None
    not_delegated_counts: dict[str, int] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class QuantizationSummary(Record):
    """`$defs/convert/quantization`: what the recipe actually quantized.

    Counts are of tensors (`weights_by_dtype`, `activations_by_dtype`), weight elements, and
    operators (`ops_by_dtype`, `ops_by_type`, `float_ops_by_type` for ops left in float);
    `effective` false (with `note`) when the recipe changed nothing.
    """

    _REQUIRED = ("recipe",)
    recipe: str
    effective: bool | None = None
    note: str | None = None
    weights_by_dtype: dict[str, int] | None = None
    weight_elements_by_dtype: dict[str, int] | None = None
    activations_by_dtype: dict[str, int] | None = None
    ops_by_dtype: dict[str, int] | None = None
    ops_by_type: dict[str, int] | None = None
    float_ops_by_type: dict[str, int] | None = None
    op_count: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _tensor(d):
    return TensorInfo.from_dict(d)


# -- $defs/convert, $defs/validate --------------------------------------------------------------

@dataclass(eq=False, kw_only=True)
class ConvertResult(Record):
    """`$defs/convert`: what `edgekit.convert` (and `convert --json`) returns.

    `artifact` and `manifest` are absolute paths; `size_bytes` the artifact's size in bytes;
    `sha256` its hex digest; `parity` None when validation was skipped (`validate=False`, or
    TensorFlow Flex ops); `timings` in seconds; `warnings` human-readable notes.
    """

    _REQUIRED = ("schema_version", "kind", "artifact", "format", "size_bytes", "recipe", "inputs", "outputs",
                 "quantization", "parity")
    _NESTED = {"quantization": lambda d: QuantizationSummary.from_dict(d), "parity": lambda d: Parity.from_dict(d),
               "delegation": lambda d: Delegation.from_dict(d)}
    _LISTS = {"inputs": _tensor, "outputs": _tensor}
    schema_version: int
    kind: str
    artifact: str
    format: str
    size_bytes: int
    recipe: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    quantization: QuantizationSummary
    parity: Parity | None
    sha256: str | None = None
    io_dtype: str | None = None
    source: dict[str, Any] | None = None
    tools: dict[str, str] | None = None
    delegation: Delegation | None = None
    manifest: str | None = None
    source_size_bytes: int | None = None
    timings: dict[str, float] | None = None
    warnings: list[str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class ValidateResult(Record):
    """`$defs/validate`: what `edgekit.validate` (and `validate --json`) returns.

    `passed` is the parity verdict; `reference` describes the reference (`kind` "model" or
    "artifact", `origin`), `candidate` the artifact (`artifact`, `format`, `precision`, its
    I/O); `layers` and `first_divergence` are present with `per_layer=True`.
    """

    _REQUIRED = ("schema_version", "kind", "passed", "reference", "candidate", "parity")
    _NESTED = {"parity": lambda d: Parity.from_dict(d)}
    schema_version: int
    kind: str
    passed: bool
    reference: dict[str, Any]
    candidate: dict[str, Any]
    parity: Parity
    target: str | None = None
    data: dict[str, Any] | None = None
    matching: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    warnings: list[str] | None = None
    layers: list[dict[str, Any]] | None = None
    first_divergence: dict[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# -- $defs/latency, $defs/profile, $defs/error, $defs/profileOrError ---------------------------

@dataclass(eq=False, kw_only=True)
class LatencyStats(Record):
    """`$defs/latency`: the distribution of the timed runs, in milliseconds.

    min ≤ p50 ≤ p90 ≤ p99 ≤ max holds (profiling.check_stats); `std` is the standard deviation.
    """

    _REQUIRED = ("min", "p50", "p90", "p99", "mean", "std", "max")
    min: float
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    max: float
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class ProfileResult(Record):
    """`$defs/profile`: what `edgekit.profile` (and `profile --json`) returns.

    Times in milliseconds (`latency_ms`, `init_ms`, `first_inference_ms`), memory in MiB
    (`peak_rss_mb`: the measuring process's high-water mark; None where unknown), sizes in
    bytes; `runs` timed runs after `warmup`; `emulated` true for qemu timings (not device
    speed); `device` describes the machine.
    """

    _REQUIRED = ("schema_version", "kind", "target", "artifact", "latency_ms", "init_ms", "first_inference_ms",
                 "peak_rss_mb", "size_bytes", "threads", "runs", "delegation", "device")
    _NESTED = {"latency_ms": lambda d: LatencyStats.from_dict(d), "delegation": lambda d: Delegation.from_dict(d)}
    _LISTS = {"inputs": _tensor}
    schema_version: int
    kind: str
    target: str
    artifact: str
    latency_ms: LatencyStats
    init_ms: float
    first_inference_ms: float
    peak_rss_mb: float | None
    size_bytes: int
    threads: int | None
    runs: int
    delegation: Delegation | None
    device: dict[str, Any]
    emulated: bool | None = None
    format: str | None = None
    runtime: dict[str, Any] | None = None
    import_ms: float | None = None
    baseline_rss_mb: float | None = None
    warmup: int | None = None
    inputs: list[TensorInfo] | None = None
    input_source: str | None = None
    ops: list | dict | None = None
    samples_ms: list[float] | None = None
    warnings: list[str] | None = None
    comparison: dict[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class ErrorInfo(Record):
    """`$defs/error`: an EdgekitError as data: message, hint (the fix) and its exit code."""

    _REQUIRED = ("message", "exit_code")
    message: str
    exit_code: int
    hint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class ProfileError(Record):
    """`$defs/profileOrError` (error branch): a target that could not be profiled in a run."""

    _REQUIRED = ("target", "error")
    _NESTED = {"error": lambda d: ErrorInfo.from_dict(d)}
    target: str
    error: ErrorInfo
    extra: Mapping[str, Any] = field(default_factory=dict)


def _profile_or_error(d: Mapping):
    if "error" in d and "latency_ms" not in d:
        return ProfileError.from_dict(d)
    return ProfileResult.from_dict(d)


# -- $defs/budgetVerdict, $defs/build, $defs/run -------------------------------------------------

@dataclass(eq=False, kw_only=True)
class BudgetVerdict(Record):
    """`$defs/budgetVerdict`: one budget of a pipeline checked against one measured value.

    `value` None when it could not be measured; `margin` how far inside (positive) or outside
    the limit, in `unit`.
    """

    _REQUIRED = ("budget", "limit", "value", "passed")
    budget: str
    limit: float
    value: float | None
    passed: bool
    target: str | None = None
    margin: float | None = None
    unit: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class BuildResult(Record):
    """`$defs/build`: one build of a pipeline: its conversion, profiles and budget verdicts.

    `status` is "built", "cached" or "failed" (then `error` says why and `convert` is None).
    """

    _REQUIRED = ("name", "options", "status", "budgets", "profiles", "passed")
    _NESTED = {"error": lambda d: ErrorInfo.from_dict(d), "convert": lambda d: ConvertResult.from_dict(d)}
    _LISTS = {"profiles": _profile_or_error, "budgets": lambda d: BudgetVerdict.from_dict(d)}
    name: str
    options: dict[str, Any]
    status: str
    budgets: list[BudgetVerdict]
    profiles: list[ProfileResult | ProfileError]
    passed: bool
    artifact: str | None = None
    cache_key: str | None = None
    error: ErrorInfo | None = None
    convert: ConvertResult | None = None
    notes: list[str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class RunReport(Record):
    """`$defs/run`: what `edgekit.run` returns (and writes as report.json in the output folder).

    `passed` is true when every build passed its budgets; `failed_budgets` counts the budget
    verdicts that failed; `not_run` names builds an interruption skipped; `out` is the folder.
    """

    _REQUIRED = ("schema_version", "kind", "pipeline", "model", "targets", "builds", "passed", "interrupted")
    _LISTS = {"builds": lambda d: BuildResult.from_dict(d)}
    schema_version: int
    kind: str
    pipeline: str
    model: str
    targets: list[str]
    builds: list[BuildResult]
    passed: bool
    interrupted: bool
    framework: str | None = None
    tools: dict[str, str] | None = None
    started: str | None = None
    finished: str | None = None
    not_run: list[str] | None = None
    failed_budgets: int | None = None
    failed_builds: list[str] | None = None
    out: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
