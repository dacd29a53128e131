"""edgekit.yaml parsing: every mistake names the line and the key, before anything runs."""

import textwrap

import pytest

from edgekit.errors import BadInput
from edgekit.pipeline_file import load

MINIMAL = """\
model: models/digits.keras        # any MODEL that `edgekit convert` accepts
input_shapes: {image: 1x8x8x1}    # optional, as --input-shape
data: data/test.npz               # samples for parity (with optional labels)
calibration: data/calib.npz       # for int8 builds
builds:
  - {name: fp32, to: tflite}
  - {name: int8, to: tflite, quantize: int8, io_dtype: int8}
targets: [host]                   # the target strings of `edgekit profile`
budgets:                          # global; a build may carry its own `budgets:` too
  size_mb: 5
  latency_p90_ms: 20              # per target
  min_psnr_db: 25
  min_top1_agreement: 0.98
  max_accuracy_drop: 0.01
  min_delegated_fraction: 1.0
"""


def write(tmp_path, text):
    p = tmp_path / "edgekit.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_minimal_file_from_the_docs(tmp_path):
    p = load(write(tmp_path, MINIMAL))
    assert [b.name for b in p.builds] == ["fp32", "int8"]
    assert p.builds[1].io_dtype == "int8" and p.builds[1].quantize == "int8"
    assert p.model == str(tmp_path / "models/digits.keras")  # relative to the file
    assert p.data == str(tmp_path / "data/test.npz") and p.input_shapes == {"image": (1, 8, 8, 1)}
    assert p.budgets["latency_p90_ms"] == 20 and p.targets == ["host"]


def test_matrix_expands(tmp_path):
    p = load(write(tmp_path, """\
        model: m.keras
        builds: {matrix: {to: [tflite], quantize: [none, fp16, dynamic-int8]}, budgets: {size_mb: 1}}
        """))
    assert [b.name for b in p.builds] == ["tflite-none", "tflite-fp16", "tflite-dynamic-int8"]
    assert all(b.budgets == {"size_mb": 1} for b in p.builds)


@pytest.mark.parametrize("text, where, words", [
    ("model: m.keras\nbuilds:\n  - {name: a, to: tflite, quantise: int8}\n", ":3: builds.0.quantise", "Did you mean 'quantize'"),
    ("model: m.keras\nbuilds:\n  - {name: a, to: tflite}\nbudget: {size_mb: 1}\n", ":4: budget", "Did you mean 'budgets'"),
    ("model: m.keras\nbuilds:\n  - {name: a, to: coreml}\n", ":3: builds.0.to", "unknown target format"),
    ("model: m.keras\nbuilds:\n  - {name: a}\nbudgets:\n  size_mb: five\n", ":5: budgets.size_mb", "must be a number"),
    ("model: m.keras\nbuilds:\n  - {name: a}\ntargets: [host]\nbudgets:\n  latency_p90_ms: {adb: 20}\n",
     ":6: budgets.latency_p90_ms.adb", "not in targets"),
    ("model: m.keras\nbuilds: []\n", ":2: builds", "non-empty"),
    ("model: 3\nbuilds:\n  - {name: a}\n", ":1: model", "non-empty string"),
    ("model: m.keras\nbuilds:\n  - {name: a}\n  - {name: a, quantize: fp16}\n", ":2: builds", "repeated: a"),
    ("model: m.keras\nbuilds:\n  - {name: a, allow_tf_ops: 'yes'}\n", ":3: builds.0.allow_tf_ops", "true or false"),
    ("model: m.keras\nruns: -3\nbuilds:\n  - {name: a}\n", ":2: runs", "positive whole number"),
    ("model: m.keras\nbuilds:\n  - {name: a\n", "line", "not valid YAML"),
])
def test_mistakes_name_line_and_key(tmp_path, text, where, words):
    with pytest.raises(BadInput) as e:
        load(write(tmp_path, text))
    assert where in e.value.message and words in str(e.value), str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load(tmp_path / "nope.yaml")


SEVERAL = """\
model: m.keras
runs: -3
builds:
  - {name: a, to: coreml}
  - {name: b, quantize: int9, allow_tf_ops: 'yes'}
  - {name: c}
targets: [host, bogus://x]
budgets:
  size_mb: five
  latency_p90ms: 20
"""


def test_every_mistake_at_once_in_file_order(tmp_path):
    """Five independent mistakes: one error lists them all, ordered by line, each with its hint
    (a user fixes the file in one pass instead of one rerun per mistake)."""
    with pytest.raises(BadInput) as e:
        load(write(tmp_path, SEVERAL))
    text = e.value.message
    assert "7 problems, in file order" in text, text
    where = [":2: runs", ":4: builds.0.to", ":5: builds.1.quantize", ":5: builds.1.allow_tf_ops",
             ":7: targets.1", ":9: budgets.size_mb", ":10: budgets.latency_p90ms"]
    positions = [text.find(w) for w in where]
    assert all(p > 0 for p in positions) and positions == sorted(positions), text
    assert "Did you mean 'latency_p90_ms'" in text and "to: tflite |" in text  # each problem keeps its hint
    assert "builds.2" not in text  # the good build is not blamed


def test_a_bad_matrix_value_is_said_once(tmp_path):
    with pytest.raises(BadInput) as e:
        load(write(tmp_path, "model: m.keras\nbuilds: {matrix: {to: [tflite, executorch], quantize: [none, int9]}}\n"))
    assert e.value.message.count("int9") == 1, e.value.message


def test_many_mistakes_are_capped(tmp_path):
    keys = "".join(f"key{i}: 1\n" for i in range(40))
    with pytest.raises(BadInput) as e:
        load(write(tmp_path, "model: m.keras\nbuilds: [{to: tflite}]\n" + keys))
    assert "40 problems" in e.value.message and "... and 15 more after line 27" in e.value.message


def test_cli_lists_every_mistake(tmp_path):
    from tests.conftest import run_cli

    r = run_cli("run", write(tmp_path, SEVERAL), "--json", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r
    error = r.json()["error"]
    assert error["exit_code"] == 2 and "7 problems" in error["message"] and "budgets.latency_p90ms" in error["message"]
    assert not (tmp_path / "out").exists()  # checked before anything is built or written
