"""Typed results (edgekit/results.py): the API's dataclasses are exactly the JSON the CLI prints.

One real convert, validate (per layer), host profile and tiny pipeline run on the bundled digits
example; each API call's underlying dict function is spied on, so the typed result is compared
with the very dict it was built from.
"""

import copy
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgekit
from edgekit import results as R

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits"
KERAS = EXAMPLE / "models" / "digits.keras"
TEST_NPZ = EXAMPLE / "data" / "test.npz"
CALIB_NPZ = EXAMPLE / "data" / "calib.npz"

# which schema $def each typed record mirrors
DEFS = {R.TensorInfo: "tensor", R.OutputParity: "outputMetrics", R.Parity: "parity", R.Delegation: "delegation",
        R.ConvertResult: "convert", R.ValidateResult: "validate", R.LatencyStats: "latency",
        R.ProfileResult: "profile", R.ErrorInfo: "error", R.BudgetVerdict: "budgetVerdict", R.BuildResult: "build",
        R.RunReport: "run"}

TINY_PIPELINE = """\
model: models/digits.keras
input_shapes: {image: 1x8x8x1}
data: data/test.npz
samples: 16
runs: 3
warmup: 1
builds:
  - {name: fp32, to: tflite}
targets: [host]
budgets:
  size_mb: 5
  min_psnr_db: 25
"""


def _spy(monkeypatch, module, name, seen):
    real = getattr(module, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        # as returned, before the typed result could touch it; the first call is the API's own
        # (edgekit.run calls convert and profile again inside)
        seen.setdefault(name, copy.deepcopy(out))
        return out

    monkeypatch.setattr(module, name, spy)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """{kind: (typed result from edgekit.<fn>, the dict the underlying function returned)}."""
    import edgekit.build
    import edgekit.pipeline
    import edgekit.profiling
    import edgekit.validation

    tmp = tmp_path_factory.mktemp("results")
    seen: dict = {}
    out: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        _spy(mp, edgekit.build, "convert", seen)
        _spy(mp, edgekit.validation, "validate", seen)
        _spy(mp, edgekit.profiling, "profile", seen)
        _spy(mp, edgekit.pipeline, "run", seen)
        art = tmp / "digits_int8.tflite"
        out["convert"] = edgekit.convert(str(KERAS), quantize="int8", calibration=str(CALIB_NPZ), data=str(TEST_NPZ),
                                         samples=16, output=art)
        out["validate"] = edgekit.validate(str(KERAS), art, data=TEST_NPZ, samples=8, per_layer=True)
        out["profile"] = edgekit.profile(art, "host", runs=3, warmup=1)
        proj = tmp / "proj"
        shutil.copytree(EXAMPLE, proj, ignore=shutil.ignore_patterns("edgekit-out", "__pycache__", "edgekit.yaml"))
        (proj / "edgekit.yaml").write_text(TINY_PIPELINE)
        out["run"] = edgekit.run(proj / "edgekit.yaml")
    return {kind: (out[kind], seen[name]) for kind, name in
            [("convert", "convert"), ("validate", "validate"), ("profile", "profile"), ("run", "run")]}


def _schema():
    return json.loads(edgekit.SCHEMA_PATH.read_text())


def _validator(def_name=None):
    import jsonschema

    schema = _schema()
    if def_name:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{def_name}"}
    return jsonschema.Draft202012Validator(schema)


def _records(value):
    """Every typed record inside VALUE (itself included), depth first."""
    if isinstance(value, R.Record):
        yield value
        for v in dict.values(value):
            yield from _records(v)
    elif isinstance(value, list):
        for v in value:
            yield from _records(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _records(v)


TYPES = {"convert": R.ConvertResult, "validate": R.ValidateResult, "profile": R.ProfileResult, "run": R.RunReport}


@pytest.mark.parametrize("kind", TYPES)
def test_to_dict_is_exactly_what_the_dict_function_returned(api, kind):
    typed, raw = api[kind]
    assert type(typed) is TYPES[kind] and getattr(edgekit, TYPES[kind].__name__) is TYPES[kind]
    plain = typed.to_dict()
    assert plain == raw and typed == raw
    assert json.dumps(plain) == json.dumps(raw)  # same keys in the same order, same values
    assert json.dumps(typed) == json.dumps(raw)  # the typed result still serialises as before
    assert not any(isinstance(x, R.Record) for x in _walk(plain))  # plain data only


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@pytest.mark.parametrize("kind", TYPES)
def test_attributes_and_items_agree_everywhere(api, kind):
    typed, _ = api[kind]
    n = 0
    for rec in _records(typed):
        n += 1
        plain = rec.to_dict()
        assert list(rec.keys()) == list(rec) == list(plain) and len(rec) == len(plain)
        for key in plain:
            assert key in rec and rec.get(key) == plain[key] == rec[key]
            expected = rec.extra[key] if key in rec.extra else getattr(rec, key)
            assert rec[key] is expected  # the item is the attribute itself (typed if nested)
            if key in rec.extra:
                assert getattr(rec, key) is expected  # extra keys read as attributes too
        assert rec.get("no-such-key", 7) == 7 and "no-such-key" not in rec
    assert n > 3


def test_typed_fields_read_naturally(api):
    conv, _ = api["convert"]
    assert isinstance(conv.parity, R.Parity) and isinstance(conv.quantization, R.QuantizationSummary)
    assert conv.parity.passed is conv["parity"]["passed"] is True
    assert conv.parity.outputs[0].psnr_db == conv["parity"]["outputs"][0]["psnr_db"] > 15
    assert isinstance(conv.parity.accuracy, R.Accuracy) and conv.parity.accuracy.delta == conv["parity"]["accuracy"]["delta"]
    assert conv.inputs[0].name == "image" and conv.inputs[0].shape == [1, 8, 8, 1] and conv.recipe == "int8"
    assert conv.quantization.ops_by_type["CONV_2D"] == 2 and Path(conv.artifact).is_file()
    check, _ = api["validate"]
    assert check.passed and check.parity.samples == 8 and check.layers and "first_divergence" in check
    prof, _ = api["profile"]
    lat = prof.latency_ms
    assert isinstance(lat, R.LatencyStats) and lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
    assert prof.runs == 3 and prof.target == "host" and isinstance(prof.delegation, R.Delegation)
    report, _ = api["run"]
    (build,) = report.builds
    assert report.passed and isinstance(build, R.BuildResult) and isinstance(build.convert, R.ConvertResult)
    assert isinstance(build.profiles[0], R.ProfileResult) and build.profiles[0].runs == 3
    assert {v.budget for v in build.budgets} == {"size_mb", "min_psnr_db"} and all(v.passed for v in build.budgets)
    assert report["builds"][0]["convert"]["sha256"] == build.convert.sha256


@pytest.mark.parametrize("kind", TYPES)
def test_typed_results_match_the_schema(api, kind):
    typed, _ = api[kind]
    _validator().validate(typed)
    _validator().validate(typed.to_dict())
    checked = set()
    for rec in _records(typed):
        name = DEFS.get(type(rec))
        if name:
            _validator(name).validate(rec.to_dict())
            checked.add(name)
    assert {"convert": {"convert", "tensor", "parity", "outputMetrics"}, "validate": {"validate", "parity"},
            "profile": {"profile", "latency", "delegation"},
            "run": {"run", "build", "convert", "profile", "budgetVerdict"}}[kind] <= checked


def test_run_report_round_trips_the_report_json_on_disk(api):
    report, _ = api["run"]
    on_disk = json.loads((Path(report.out) / "report.json").read_text())
    again = R.RunReport.from_dict(on_disk)
    assert again.to_dict() == on_disk and json.dumps(again) == json.dumps(on_disk)
    # a target that could not be profiled, and a build that failed: the error branches of $defs
    broken = copy.deepcopy(on_disk)
    broken["builds"][0]["profiles"].append({"target": "ssh://pi@board", "error": {
        "message": "ssh: connect refused", "hint": "Is the board on?", "exit_code": 4}})
    broken["builds"].append(dict(broken["builds"][0], name="bad", status="failed", passed=False, convert=None,
                                 profiles=[], budgets=[], error={"message": "no", "hint": None, "exit_code": 2}))
    typed = R.RunReport.from_dict(broken)
    assert typed.to_dict() == broken and json.dumps(typed) == json.dumps(broken)
    err = typed.builds[0].profiles[-1]
    assert isinstance(err, R.ProfileError) and err.error.exit_code == 4 and err["error"]["hint"] == "Is the board on?"
    assert isinstance(typed.builds[1].error, R.ErrorInfo) and typed.builds[1].convert is None
    _validator().validate(typed)


def test_unknown_keys_missing_keys_and_nulls_survive_a_round_trip():
    d = {"kind": "profile", "schema_version": 1, "future_key": {"a": [1, 2]}, "target": "host", "artifact": "m.tflite",
         "latency_ms": {"min": 1.0, "p50": 1.0, "p90": 2.0, "p99": 2.0, "mean": 1.2, "std": 0.1, "max": 3.0,
                        "p999": 3.0},
         "init_ms": 1.0, "first_inference_ms": 2.0, "peak_rss_mb": None, "size_bytes": 10, "threads": None, "runs": 5,
         "delegation": None, "device": {"cpu": "x"}}
    p = R.ProfileResult.from_dict(d)
    assert p.to_dict() == d and json.dumps(p) == json.dumps(d)  # order kept, extra keys in place
    assert p.extra == {"future_key": {"a": [1, 2]}} and p.latency_ms.extra == {"p999": 3.0}
    assert p.future_key == {"a": [1, 2]} and p.latency_ms["p999"] == 3.0
    assert "warnings" not in p and p.warnings is None  # absent stays absent
    assert "peak_rss_mb" in p and p["peak_rss_mb"] is None  # null stays null
    d["future_key"]["a"].append(3)
    assert p.future_key == {"a": [1, 2]}  # from_dict copies: the caller's dict is not shared
    with pytest.raises(TypeError):
        R.ProfileResult.from_dict([("kind", "profile")])


def test_writes_keep_both_views_in_step(api):
    conv = R.ConvertResult.from_dict(api["convert"][1])
    conv.parity.passed = False
    assert conv["parity"]["passed"] is False and conv.to_dict()["parity"]["passed"] is False
    conv["warnings"] = ["w"]
    assert conv.warnings == ["w"]
    conv["new_key"] = 1
    assert conv.extra["new_key"] == 1 and list(conv)[-1] == "new_key" and json.loads(json.dumps(conv))["new_key"] == 1
    del conv["new_key"]
    assert "new_key" not in conv and "new_key" not in conv.extra
    assert conv.pop("sha256") and "sha256" not in conv and conv.sha256 is None
    conv.sha256 = "0" * 64
    assert conv["sha256"] == "0" * 64
    conv.parity = api["convert"][1]["parity"]  # a plain dict becomes typed again
    assert isinstance(conv.parity, R.Parity) and conv["parity"] is conv.parity
    with pytest.raises(TypeError):
        conv.extra["x"] = 1  # read-only: write through items instead
    with pytest.raises(TypeError):
        conv.clear()
    for clone in (copy.copy(conv), copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        assert type(clone) is R.ConvertResult and clone == conv and clone.parity.outputs[0] == conv.parity.outputs[0]


def test_built_by_hand_writes_the_required_keys():
    t = R.TensorInfo(name="x", shape=[1, None], dtype="int8", scale=0.5, zero_point=-3)
    assert t.to_dict() == {"name": "x", "shape": [1, None], "dtype": "int8", "scale": 0.5, "zero_point": -3}
    v = R.BudgetVerdict(budget="size_mb", limit=5, value=None, passed=False)
    assert v.to_dict() == {"budget": "size_mb", "limit": 5, "value": None, "passed": False}
    _validator("budgetVerdict").validate(v)
    with pytest.raises(ValueError):
        R.TensorInfo(name="x", shape=[1], dtype="int8", extra={"dtype": "float32"})


def test_import_edgekit_imports_no_framework():
    code = ("import sys, edgekit; edgekit.ConvertResult; edgekit.convert; "
            "print(sorted(m for m in ('tensorflow', 'torch', 'keras', 'executorch', 'ai_edge_litert', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
