"""Models shaped like those in converter bug reports (litert-torch, ExecuTorch, TFLite), which
edgekit's own designs did not cover: each a real small model written to a factory file in the
test, run through the CLI, held to the error contract (documented exit code, one `error:`
paragraph with its hint, no traceback, nothing left beside the output)."""

from __future__ import annotations

import json
import textwrap

import numpy as np

from tests.conftest import run_cli

TORCH_HEAD = "import torch, torch.nn as nn\n"
KERAS_HEAD = "import keras\nfrom keras import layers\n"


def factory(tmp_path, body: str, name: str = "nets.py", head: str = TORCH_HEAD) -> str:
    """Write BODY (after HEAD, `import torch, torch.nn as nn`) to TMP_PATH/NAME; returns its path."""
    p = tmp_path / name
    p.write_text(head + textwrap.dedent(body))
    return str(p)


def one_error(r) -> str:
    """The single `error:` paragraph's first line; fails on a traceback or several errors."""
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r
    return errors[0]


def test_sequence_first_attention_is_refused_by_name(tmp_path):
    """nn.MultiheadAttention without batch_first takes (L, N, E): query 6x1x16 and key 5x1x16
    differ in their first axis, which edgekit stacks samples on. Before: an IndexError reported
    as an edgekit bug (exit 1); now exit 2 naming both inputs and batch_first=True."""
    nets = factory(tmp_path, """
        class MHA(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = nn.MultiheadAttention(16, 2)

            def forward(self, q, k):
                return self.attn(q, k, k)[0]

        def build():
            return MHA().eval(), (torch.randn(6, 1, 16), torch.randn(5, 1, 16))
    """)
    r = run_cli("convert", nets + ":build", "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    line = one_error(r)
    assert "q 6x1x16" in line and "k 5x1x16" in line and "first dimension" in line, r
    assert "batch_first=True" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"], r


def test_random_token_ids_are_not_blamed_on_the_users_data(tmp_path):
    """A float + int64 token-id model with no --data: edgekit's random integers ([-128, 127])
    break the Embedding. Before: "fix the --data/--calibration values", though none was given;
    now the error says the samples were edgekit's random ones and asks for real ids (exit 2)."""
    nets = factory(tmp_path, """
        class TwoDtypes(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(20, 8)
                self.fc = nn.Linear(16, 3)

            def forward(self, feats, ids):
                return self.fc(torch.cat([feats, self.emb(ids).mean(1)], -1))

        def build():
            return TwoDtypes().eval(), (torch.randn(1, 8), torch.randint(0, 20, (1, 6)))
    """)
    r = run_cli("convert", nets + ":build", "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    line = one_error(r)
    assert "No data was given: these were edgekit's random samples; ids got random integers" in line, r
    assert "Pass real samples with --data" in r.stderr and "fix the --data" not in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"], r
    np.savez(tmp_path / "d.npz", feats=np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32),
             ids=np.random.default_rng(0).integers(0, 20, (4, 6)))
    r = run_cli("convert", nets + ":build", "--to", "executorch", "--data", tmp_path / "d.npz", "-o", tmp_path / "m.pte",
                "--json")
    assert r.exit_code == 0 and r.json()["parity"]["passed"], r


def test_keras_string_input_is_refused_by_name(tmp_path):
    """A Keras model taking a string input (StringLookup inside): numpy has no dtype 'string'.
    Before: "edgekit hit an unexpected TypeError" (exit 1); now exit 2 naming the input and
    saying to do the string processing in the app."""
    nets = factory(tmp_path, """
        def build():
            s = keras.Input((1,), dtype="string", name="s")
            x = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")(s)
            return keras.Model(s, layers.Dense(2)(x))
    """, head=KERAS_HEAD)
    r = run_cli("convert", nets + ":build", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "Input 's' of the Keras model" in one_error(r) and "takes string tensors" in r.stderr, r
    assert "StringLookup" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"], r
    # the same model exported as a SavedModel: "Cannot make random data for input s 1x1 object" before
    import importlib.util

    spec = importlib.util.spec_from_file_location("string_nets", nets)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.build().export(str(tmp_path / "sm"), verbose=False)
    r = run_cli("convert", tmp_path / "sm", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "Input 's' of the SavedModel" in one_error(r) and "takes string tensors" in r.stderr, r


def _labels_case(tmp_path, labels):
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, labels=labels)
    return tmp_path / "d.npz"


def test_labels_that_are_not_class_indices_are_refused(assets, tmp_path):
    """Labels the accuracy cannot use. Before: one-hot rows failed the check as "the artifact
    failed while being checked" (exit 1, files kept); strings, fractions and indices beyond the
    output's classes scored both models 0 % and reported a delta of +0.00 as measured, exit 0."""
    val = ["validate", assets["tiny_keras"], assets["tiny_tflite"], "--data"]
    bad = {"one-hot": (np.eye(4)[[0, 1, 2, 3]], "labels of shape (4, 4)"),
           "strings": (np.array(["0", "1", "2", "3"]), "labels of type <U1"),
           "fractions": (np.array([0.5, 1.0, 2.0, 3.0]), "not whole numbers"),
           "negative": (np.array([-1, 1, 2, 3]), "negative labels"),
           "beyond-classes": (np.array([0, 1, 2, 103]), "labels go up to 103, but output")}
    for what, (labels, said) in bad.items():
        r = run_cli(*val, _labels_case(tmp_path, labels))
        assert r.exit_code == 2, (what, r)
        assert said in one_error(r), (what, r)
    r = run_cli(*val, _labels_case(tmp_path, np.array([0.0, 1.0, 2.0, 3.0])), "--json")  # integral floats: fine
    assert r.exit_code in (0, 1) and r.json()["parity"]["accuracy"] is not None, r


TOKEN_IDS_MODEL = """
        def build():
            ids = keras.Input((12,), dtype="int32", name="ids")
            x = layers.GlobalAveragePooling1D()(layers.Embedding(20, 8)(ids))
            return keras.Model(ids, layers.Dense(3)(x))
    """  # a Keras text model taking int32 token ids (vocabulary 20)


def test_int16x8_of_a_token_id_model_says_why_and_what_works(tmp_path):
    """Keras Embedding model (int32 ids) with --quantize int16x8: TFLite records no range for the
    integer input. Before: the converter's line with only "Run with --debug"; now exit 2 naming
    the input and the recipes that do take token ids (int8, dynamic-int8, fp16)."""
    nets = factory(tmp_path, TOKEN_IDS_MODEL, head=KERAS_HEAD)
    np.savez(tmp_path / "c.npz", ids=np.random.default_rng(0).integers(0, 20, (16, 12)).astype(np.int32))
    r = run_cli("convert", nets + ":build", "--quantize", "int16x8", "--calibration", tmp_path / "c.npz",
                "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "cannot quantize this model to int16x8" in one_error(r) and "integer input ids" in r.stderr, r
    assert "--quantize int8" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "nets.py"], r


def test_one_sample_calibration_checked_on_itself_says_so(assets, tmp_path):
    """int8 calibrated on 1 sample and, without --data, checked on that same sample: the verdict
    was "parity passed" with no word that it was in-sample or that 1 sample sets the ranges."""
    np.save(tmp_path / "c.npy", np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32))
    r = run_cli("convert", assets["tiny_keras"], "--quantize", "int8", "--calibration", tmp_path / "c.npy",
                "-o", tmp_path / "m.tflite", "--json")
    assert r.exit_code == 0, r
    said = " ".join(r.json()["warnings"])
    assert "ranges come from 1 calibration sample(s)" in said, said
    assert "Parity was checked on 1 calibration sample(s), the ones the ranges were fitted to" in said, said


def test_profile_of_a_token_id_model_without_data_runs(tmp_path):
    """`edgekit profile` of a .tflite taking int32 token ids, no --data: the agent's random
    integers in [-128, 127] made the GATHER fail and the error said to reconvert the model (exit 1).
    Ids without a quantization scale are now fed 0/1, valid for any vocabulary."""
    nets = factory(tmp_path, TOKEN_IDS_MODEL, head=KERAS_HEAD)
    np.savez(tmp_path / "d.npz", ids=np.random.default_rng(0).integers(0, 20, (8, 12)).astype(np.int32))
    r = run_cli("convert", nets + ":build", "--data", tmp_path / "d.npz", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 0, r
    r = run_cli("profile", tmp_path / "m.tflite", "--runs", "3", "--warmup", "1", "--json")
    assert r.exit_code == 0, r
    assert r.json()["latency_ms"]["p50"] > 0, r


def test_pte_profile_counts_each_portable_op_once(tmp_path):
    """ETDump wraps each portable kernel's native_call_* event in an OPERATOR_CALL event: both
    were counted, so `delegation.portable_ops` was doubled and OPERATOR_CALL took a share of the
    time table (and a place in "Not on XNNPACK") though it is no operator."""
    nets = factory(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 10)

            def forward(self, x):
                return self.fc(x).argmax(-1)

        def build():
            return Net().eval(), (torch.randn(1, 8),)
    """)
    r = run_cli("convert", nets + ":build", "--to", "executorch", "-o", tmp_path / "m.pte", "--no-validate")
    assert r.exit_code == 0, r
    r = run_cli("profile", tmp_path / "m.pte", "--runs", "3", "--warmup", "1", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    deleg = res["delegation"]
    assert "OPERATOR_CALL" not in deleg["not_delegated"], deleg
    assert deleg["portable_ops"] == 1 and deleg["not_delegated"] == ["argmax.out"], deleg
    assert "OPERATOR_CALL" not in json.dumps(res["ops"]), res["ops"]


def test_scalar_output_converts_and_is_checked(tmp_path):
    """forward returning `y.sum()` (a 0-d output, as loss-like heads do): the reference's groups
    were joined with np.concatenate, which refuses 0-d arrays: "edgekit hit an unexpected
    ValueError" (exit 1) for .pte and .tflite alike. Now checked like any output; a .pte whose
    scalar differs from the model's would fail (the values are compared, not only shapes)."""
    nets = factory(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def forward(self, x):
                return self.fc(x).sum()

        def build():
            torch.manual_seed(0)
            return Net().eval(), (torch.randn(1, 8),)
    """)
    r = run_cli("convert", nets + ":build", "--to", "executorch", "-o", tmp_path / "m.pte", "--json")
    assert r.exit_code == 0, r
    out = r.json()["parity"]["outputs"][0]
    assert out["passed"] and out["cosine"] > 0.9999, out
    res = run_cli("validate", nets + ":build", tmp_path / "m.pte", "--min-psnr", "200", "--json")
    assert res.exit_code in (0, 1) and res.json()["parity"]["samples"] == 32, res


def test_pt2_with_a_dynamic_batch_lowers_at_the_resolved_batch(tmp_path):
    """A .pt2 exported with Dim("batch", max=16): edgekit resolves batch 1 (or --input-shape) but
    lowered the program as it was, so the .pte took batch 16 and the build failed "outputs of
    shape (16, 4) where the source gives (1, 4)" (exit 1). Now re-exported at the resolved shape."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(x)

    batch = torch.export.Dim("batch", min=1, max=16)
    ep = torch.export.export(Net().eval(), (torch.randn(2, 8),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, tmp_path / "dyn.pt2")
    for shape, want in ((None, [1, 8]), ("x=4x8", [4, 8])):
        extra = ["--input-shape", shape] if shape else []
        r = run_cli("convert", tmp_path / "dyn.pt2", "--to", "executorch", "-o", tmp_path / "m.pte", "--json", *extra)
        assert r.exit_code == 0, r
        res = r.json()
        assert res["inputs"][0]["shape"] == want and res["parity"]["passed"], res


def test_edgetpu_float_io_hint_names_io_dtype(assets, tmp_path):
    """An int8 build with float I/O for the Edge TPU: the prediction told the user to "quantize
    fully to int8 (edgekit convert --quantize int8)", which they had just done; what keeps the
    edges on the CPU is the float I/O, which --io-dtype changes."""
    np.save(tmp_path / "c.npy", np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    r = run_cli("convert", assets["tiny_keras"], "--to", "edgetpu", "--quantize", "int8", "--calibration",
                tmp_path / "c.npy", "-o", tmp_path / "m.tflite", "--json")
    assert r.exit_code == 0, r
    said = " ".join(r.json()["warnings"])
    assert "not 8-bit integer" in said and "--io-dtype uint8 or int8" in said, said


def test_model_that_is_inf_on_zeros_is_not_blamed_on_the_conversion(tmp_path):
    """forward = log(x) (log-mel front ends): the post-build run on zeros gives -inf, as the model
    itself does there. Before: "The .pte gives NaN/inf ... on a plain input" (exit 1, nothing
    written) for any such model; now only an artifact non-finite where the source is finite fails
    that check, and parity on real positive data decides."""
    nets = factory(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def forward(self, x):
                return self.fc(torch.log(x))

        def build():
            torch.manual_seed(0)
            return Net().eval(), (torch.ones(1, 8),)
    """)
    np.save(tmp_path / "d.npy", np.random.default_rng(0).uniform(0.1, 2.0, (16, 8)).astype(np.float32))
    r = run_cli("convert", nets + ":build", "--to", "executorch", "--data", tmp_path / "d.npy", "-o", tmp_path / "m.pte",
                "--json")
    assert r.exit_code == 0 and r.json()["parity"]["passed"], r


def test_per_layer_compares_a_conv_with_its_folded_batchnorm(tmp_path):
    """Conv2d → BatchNorm2d → relu to an int8 .tflite: litert-torch folds the BatchNorm into the conv's op,
    whose tensor then holds BN(conv(x)). --per-layer compared it with the conv alone and named the
    conv the first divergence (PSNR ≈ 2 dB) of a build whose output matches at ≈ 50 dB. Now compared
    with the BatchNorm's value (and the fused relu), the BatchNorm listed as folded there."""
    nets = factory(tmp_path, """
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(1, 8, 3, padding=1)
                self.bn1 = nn.BatchNorm2d(8)
                self.fc = nn.Linear(8, 4)

            def forward(self, image):
                return self.fc(F.relu(self.bn1(self.c1(image))).mean((2, 3)))

        def build():
            torch.manual_seed(0)
            net = Net()
            with torch.no_grad():  # a trained BatchNorm: statistics far from (0, 1)
                net.bn1.running_mean.uniform_(-2, 2)
                net.bn1.running_var.uniform_(0.1, 4)
                net.bn1.weight.uniform_(0.5, 2)
            return net.eval(), (torch.zeros(1, 1, 8, 8),)
    """)
    np.save(tmp_path / "d.npy", np.random.default_rng(0).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32))
    r = run_cli("convert", nets + ":build", "--to", "tflite", "--quantize", "int8", "--calibration", tmp_path / "d.npy",
                "-o", tmp_path / "m.tflite")
    assert r.exit_code == 0, r
    r = run_cli("validate", nets + ":build", tmp_path / "m.tflite", "--data", tmp_path / "d.npy", "--per-layer", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["first_divergence"] is None, res["layers"]
    c1 = next(row for row in res["layers"] if row["layer"] == "c1")
    assert "BatchNorm2d bn1 (folded)" in c1["op_type"] and c1["psnr_db"] > 40, c1
    assert any(u["layer"] == "bn1" and "folded into c1" in u["reason"] for u in res["not_observable"]), res


def test_float64_data_beyond_float32_is_refused_not_cast_to_inf(assets, tmp_path):
    """float64 data (numpy's default) is cast to the model's float32; 1e300 became inf after the
    finiteness check had passed on the float64 array, and the check "failed" (exit 1) as if the
    artifact were wrong. Now refused as data (exit 2), saying the cast overflowed."""
    np.save(tmp_path / "d.npy", np.full((4, 8), 1e300))
    r = run_cli("validate", assets["tiny_keras"], assets["tiny_tflite"], "--data", tmp_path / "d.npy")
    assert r.exit_code == 2, r
    assert "32 NaN or infinite value(s) in input 'x' once cast from float64 to float32" in one_error(r), r


def test_int64_token_ids_feed_an_int32_input(tmp_path):
    """numpy's default integers are int64; a Keras Embedding model takes int32 ids. The data was
    refused ("gives input 'ids' as int64, the model takes int32") though the cast is exact; now
    cast when every id fits, and still refused when one does not."""
    nets = factory(tmp_path, TOKEN_IDS_MODEL, head=KERAS_HEAD)
    np.savez(tmp_path / "d.npz", ids=np.random.default_rng(0).integers(0, 20, (8, 12)))  # int64
    r = run_cli("convert", nets + ":build", "--data", tmp_path / "d.npz", "-o", tmp_path / "m.tflite", "--json")
    assert r.exit_code == 0 and r.json()["parity"]["passed"], r
    np.savez(tmp_path / "big.npz", ids=np.full((8, 12), 2**40))
    r = run_cli("validate", nets + ":build", tmp_path / "m.tflite", "--data", tmp_path / "big.npz")
    assert r.exit_code == 2 and "as int64, the model takes int32" in one_error(r), r


def test_keras_layer_with_a_non_ascii_name_is_refused_by_name(tmp_path):
    """A Keras layer named '输出': Keras runs it eagerly, but TensorFlow's graph tracing for the
    SavedModel export rejects the scope name. Before: "edgekit hit an unexpected ValueError"
    (exit 1); now exit 2 naming the layer and how to rename it."""
    nets = factory(tmp_path, """
        def build():
            a = keras.Input((8,), name="a")
            return keras.Model(a, layers.Dense(3, name="输出")(a))
    """, head=KERAS_HEAD)
    r = run_cli("convert", nets + ":build", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "named '输出'" in one_error(r) and "Rename it" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"], r
    # an input named so: TensorFlow's signature then saw "more than one argument named '图像'"
    (tmp_path / "nets.py").write_text(KERAS_HEAD + "def build():\n    a = keras.Input((8,), name='图像')\n"
                                      "    return keras.Model(a, layers.Dense(3, name='out')(a))\n")
    r = run_cli("convert", nets + ":build", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "named '图像'" in one_error(r), r


def test_keras_token_ids_out_of_range_name_the_reason(tmp_path):
    """Token ids past a Keras Embedding: the error quoted Keras' wrapper line ("Exception
    encountered when calling Embedding.call().") instead of TensorFlow's reason after it."""
    nets = factory(tmp_path, TOKEN_IDS_MODEL, head=KERAS_HEAD)
    np.savez(tmp_path / "d.npz", ids=np.full((4, 12), 40, np.int32))
    r = run_cli("convert", nets + ":build", "--data", tmp_path / "d.npz", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    line = one_error(r)
    assert "= 40 is not in [0, 20)" in line and "Exception encountered" not in line and "ids in [40, 40]" in line, r
