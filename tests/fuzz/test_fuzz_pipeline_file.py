"""Fuzz the pipeline file loader (edgekit.pipeline_file.load): edgekit.yaml documents built from
the schema's own keys (top level, builds, a build matrix, budgets) with values of the wrong type,
wrong values, wrong nesting, shared anchors/aliases, huge and non-finite numbers, unicode; then
the same text damaged (lines dropped, shuffled, cut, indentation broken) and hand-written hostile
YAML (deep nesting, alias loops, billion laughs, tags, several documents, bytes that are not
UTF-8). Contract: a Pipeline, or BadInput (exit 2) naming the file — never another exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import strategies as st

from edgekit import pipeline_file
from tests.fuzz._fuzz import mutated, mutated_text, outcome, tiers

VALID = """\
model: models/digits.keras
input_shapes: {image: 1x8x8x1}
data: data/test.npz
calibration: data/calib.npz
builds:
  - {name: fp32, to: tflite}
  - {name: int8, to: tflite, quantize: int8, io_dtype: int8}
targets: [host]
budgets: {size_mb: 5, latency_p90_ms: 20, min_psnr_db: 25}
runs: 10
"""
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(),
    st.sampled_from([0, -1, 1, 10 ** 30, 2 ** 63, "", "random", "tflite", "executorch", "torchscript",
                     "onnx", "none", "int8", "fp16", "dynamic-int8", "int16x8", "float32", "int8", "host",
                     "ssh://pi@rpi", "ssh://", "adb:", "adb?python=x", "qemu:", "coral", "unknown://x", "1x8x8x1",
                     "image=1x8x8x1", "0x3", "1x" + "9" * 5000, "-1x3", "x", "m.keras", "nets.py:f", "nets.py:",
                     ":", "a:b:c", "../../etc/passwd", "/abs/path", "a" * 300, "é∂ƒ", "\u202e", "a\0b", "~",
                     "yes", "no", "0o17", "0x1F", ".inf", "-.nan", "2001-12-14"]),
    st.text(max_size=12),
)
KEYS = sorted(pipeline_file.TOP_KEYS | pipeline_file.BUILD_KEYS | set(pipeline_file.BUDGETS)) + [
    "matrix", "modle", "Builds", "", "1", "target"]


def _value(depth: int):
    if depth == 0:
        return SCALARS
    inner = _value(depth - 1)
    return st.one_of(SCALARS, st.lists(inner, max_size=4),
                     st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4))


VALUE = _value(2)
BUILD = st.dictionaries(st.sampled_from(sorted(pipeline_file.BUILD_KEYS)), VALUE, max_size=5)
BUDGETS = st.dictionaries(st.sampled_from(sorted(pipeline_file.BUDGETS)) | st.sampled_from(["latency", "size"]),
                          VALUE | st.dictionaries(st.sampled_from(["host", "ssh://pi@rpi", "qemu:x"]), VALUE,
                                                  max_size=2), max_size=3)
MATRIX = st.fixed_dictionaries({"matrix": st.dictionaries(st.sampled_from(sorted(pipeline_file.BUILD_KEYS)),
                                                          st.lists(SCALARS, max_size=4) | SCALARS, max_size=4)},
                               optional={"budgets": BUDGETS, "extra": VALUE})


@st.composite
def document(draw) -> dict:
    """A pipeline dict from the schema's keys: mostly plausible values, some of any type."""
    doc = {}
    if draw(st.integers(0, 9)):
        doc["model"] = draw(st.sampled_from(["models/digits.keras", "nets.py:net", "m.onnx"]) | SCALARS)
    if draw(st.integers(0, 9)):
        doc["builds"] = draw(st.lists(BUILD, max_size=4) | MATRIX | VALUE)
    for key in draw(st.lists(st.sampled_from(sorted(pipeline_file.TOP_KEYS - {"model", "builds"})), max_size=5)):
        if key == "budgets":
            doc[key] = draw(BUDGETS | VALUE)
        elif key == "targets":
            doc[key] = draw(st.lists(SCALARS, max_size=3) | VALUE)
        else:
            doc[key] = draw(VALUE)
    if not draw(st.integers(0, 5)):
        doc[draw(st.sampled_from(KEYS))] = draw(VALUE)
    if not draw(st.integers(0, 4)) and len(doc) >= 2:  # one value shared by two keys: an anchor and an alias
        keys = sorted(doc, key=str)
        shared = doc[draw(st.sampled_from(keys))]
        doc[draw(st.sampled_from(keys))] = shared
    return doc


def _dump(doc, flow, unicode) -> str:
    return yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode, sort_keys=False, width=10 ** 6)


HOSTILE = {
    "deep-flow": lambda: "model: " + "[" * 20000 + "\n",
    "deep-block": lambda: "model: m.keras\nbuilds:\n" + "".join("  " * i + "- \n" for i in range(1, 700)),
    "alias-loop": lambda: "model: m.keras\nbuilds: &a [{to: tflite}, *a]\n",
    "laughs": lambda: "model: m.keras\n" + "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n" for i in range(9)) + "builds: *l8\n",
    "matrix": lambda: "model: m.keras\nbuilds: {matrix: {" + ", ".join(
        f"{k}: [{', '.join(str(j) for j in range(40))}]" for k in ("io_dtype", "calibration", "name")) + "}}\n",
    "matrix-valid": lambda: "model: m.keras\nbuilds: {matrix: {to: &t [tflite, tflite, tflite, tflite, tflite, "
                            "tflite, tflite, tflite], quantize: [none, none, none, none, none, none, none, none], "
                            "io_dtype: *t, calibration: *t, allow_tf_ops: *t, channels_last_io: *t}}\n",
    "python-tag": lambda: "model: !!python/object/apply:os.system ['true']\nbuilds: [{to: tflite}]\n",
    "binary": lambda: "model: !!binary aGVsbG8=\nbuilds: [{to: tflite}]\n",
    "two-docs": lambda: VALID + "---\n" + VALID,
    "merge-keys": lambda: "base: &b {to: tflite}\nmodel: m.keras\nbuilds: [{<<: *b, name: x}]\n",
    "dup-keys": lambda: "model: a\nmodel: b\nbuilds: [{to: tflite}]\n",
    "huge-int": lambda: "model: m.keras\nruns: " + "9" * 5000 + "\nbuilds: [{to: tflite}]\n",
    "huge-shape": lambda: "model: m.keras\ninput_shapes: {x: 1x" + "9" * 5000 + "}\nbuilds: [{to: tflite}]\n",
    "complex-key": lambda: "? [a, b]\n: c\nmodel: m.keras\nbuilds: [{to: tflite}]\n",
    "tabs": lambda: "model:\tm.keras\nbuilds:\n\t- {to: tflite}\n",
    "bom": lambda: "\ufeff" + VALID,
}


def yaml_bytes():
    docs = document()
    text = st.one_of(
        st.builds(_dump, docs, st.sampled_from([None, True, False]), st.booleans()),
        st.builds(_dump, docs, st.just(False), st.booleans()).flatmap(mutated_text),
        st.just(VALID).flatmap(mutated_text),
    ).map(lambda t: t.encode("utf-8", "surrogatepass"))
    return st.one_of(
        text,
        text.flatmap(mutated),  # bytes damaged: not UTF-8 any more, maybe
        st.sampled_from(sorted(HOSTILE)).map(lambda k: HOSTILE[k]().encode()),  # whole (large: not mutated)
    )


def check_pipeline_file(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "edgekit.yaml"
        p.write_bytes(data)
        kind, got = outcome("pipeline_file.load", pipeline_file.load, p)
        if kind == "ok":
            assert got.builds and all(isinstance(b.name, str) for b in got.builds)
        else:
            assert str(p) in got.message or "edgekit.yaml" in got.message, got.message


test_pipeline_file, test_pipeline_file_slow = tiers(
    check_pipeline_file, slow=2500, case=yaml_bytes(),
    examples=[HOSTILE[k]().encode() for k in sorted(HOSTILE)] + [
        b"model: m.keras\nbuilds: [{to: tflite, quantize: [int8]}]\n",  # unhashable: TypeError in `in RECIPES`
        b"model: m.keras\nbuilds: [{to: tflite, calibration: 5}]\n",  # Path / int: TypeError
        b"model: m.keras\nbuilds: [{to: [tflite]}]\n",
        b"model: m.keras\nbuilds: [{to: tflite}]\ntargets: [{a: 1}]\n",
        b"model: m.keras\nbuilds: [{to: tflite, name: [x]}]\n",
        b"model: m.keras\nbuilds: [{to: tflite, budgets: {latency_p90_ms: {host: [1]}}}]\n",
        b"model: m.keras\nbuilds: [{to: tflite}]\nbudgets: {latency_p90_ms: {[a]: 1}}\n",
        b"model: \xff\xfe\nbuilds: [{to: tflite}]\n",  # not UTF-8
        b"model: 2001-13-45\nbuilds: [{to: tflite}]\n",  # PyYAML's date(): ValueError
        b'model: "\\U99999999"\nbuilds: [{to: tflite}]\n',  # PyYAML's chr(): OverflowError (found by the slow tier)
        b'model: "\\U0011FFFF"\nbuilds: [{to: tflite}]\n',  # past the last code point: chr()'s ValueError
    ])
