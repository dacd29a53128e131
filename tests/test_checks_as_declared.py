"""Checks that run the model as the device will (issue 16): both sides fed as the model declares
its batch, what a model is (subclasses, dict I/O, signatures, traces), state, and what the device
runtime has. Every model is made here, tiny; a correct conversion passes, a wrong one fails naming
the cause, the user's model is unchanged by the check, and a failed check keeps the files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import BadInput, CheckFailed


# -- helpers ---------------------------------------------------------------------------------

def keras_weights(model) -> list:
    return [np.array(w) for w in model.get_weights()]


def same_weights(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def torch_state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def convert(model, dest, **kw):
    from edgekit.build import convert as build_convert

    return build_convert(model, output=str(dest), isolate=False, **kw)


def expect_kept_on_failure(result: dict, dest) -> None:
    """A failed check: exit 1 (CheckFailed), the file and its manifest written with the verdict."""
    from edgekit.build import raise_for_parity

    with pytest.raises(CheckFailed) as err:
        raise_for_parity(result)
    assert err.value.exit_code == 1 and "files written" in err.value.message
    assert dest.is_file()
    manifest = json.loads(dest.with_name(dest.name + ".json").read_text())
    assert manifest["parity"]["passed"] is False


def wrong_keras_export(monkeypatch, wrong_model) -> None:
    """Make keras → tflite convert WRONG_MODEL instead of the source: a wrong conversion."""
    from edgekit.converters import keras_to_tflite as k2t
    from edgekit.sources.keras import from_keras_model

    original = k2t.convert

    def convert_wrong(source, recipe, dest, options):
        twin = from_keras_model(wrong_model, "wrong", {})
        source.extra = {**source.extra, "export_saved_model": twin.extra["export_saved_model"]}
        return original(source, recipe, dest, options)

    monkeypatch.setattr(k2t, "convert", convert_wrong)


# -- batch as declared -----------------------------------------------------------------------

def keras_batch1_moves_batch_axis(axis: int = 1):
    """Declares batch 1 and normalizes over the axis the batch moved to (axis=1: right)."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((4, 3), batch_size=1, name="x")
    y = keras.ops.transpose(x, (1, 0, 2))
    y = keras.ops.normalize(y, axis=axis)
    return keras.Model(x, keras.ops.transpose(y, (1, 0, 2)))


def keras_fixed_batch(batch: int = 4, axis: int = 0):
    """A fixed batch of BATCH whose output mixes the samples (normalized over the batch)."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((3,), batch_size=batch, name="x")
    y = keras.layers.Dense(2)(x)
    return keras.Model(x, keras.ops.normalize(y, axis=axis))


def torch_fixed_batch4():
    import torch

    class AcrossBatch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return torch.nn.functional.normalize(self.lin(x), dim=0)

    torch.manual_seed(0)
    return AcrossBatch().eval()


def test_keras_batch1_model_moving_the_batch_axis_is_fed_one_sample_on_both_sides(tmp_path, monkeypatch):
    model = keras_batch1_moves_batch_axis()
    before = keras_weights(model)
    res = convert(model, tmp_path / "b1.tflite")
    assert res["parity"]["passed"], res["parity"]
    assert res["parity"]["batching"]["batch"] == 1
    assert same_weights(before, keras_weights(model))
    # a wrong conversion (normalized over another axis) fails, and keeps its files
    wrong_keras_export(monkeypatch, keras_batch1_moves_batch_axis(axis=2))
    bad = convert(model, tmp_path / "b1_wrong.tflite")
    assert not bad["parity"]["passed"]
    expect_kept_on_failure(bad, tmp_path / "b1_wrong.tflite")


def test_keras_fixed_batch4_is_fed_groups_of_4_and_padded(tmp_path, monkeypatch):
    model = keras_fixed_batch()
    before = keras_weights(model)
    res = convert(model, tmp_path / "b4.tflite", samples=6)  # 6 = one group of 4 + 2 padded
    p = res["parity"]
    assert p["passed"], p
    assert p["batching"] == {"batch": 4, "from": "as the artifact declares", "padded": 2, "groups": 2}
    assert any("groups of 4" in n and "padded with 2" in n for n in p["notes"])
    assert same_weights(before, keras_weights(model))
    wrong_keras_export(monkeypatch, keras_fixed_batch(axis=1))  # normalized per sample: wrong
    bad = convert(model, tmp_path / "b4_wrong.tflite")
    assert not bad["parity"]["passed"]
    expect_kept_on_failure(bad, tmp_path / "b4_wrong.tflite")


def test_a_reference_and_an_artifact_of_different_fixed_batches_are_refused_naming_the_batch(tmp_path):
    from edgekit.validation import validate

    convert(keras_fixed_batch(batch=2), tmp_path / "b2.tflite")
    with pytest.raises(BadInput) as err:
        validate(keras_fixed_batch(batch=4), tmp_path / "b2.tflite")
    assert err.value.exit_code == 2 and "batch 4" in err.value.message and "batch 2" in err.value.message


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("torchscript", ".ptl"), ("tflite", ".tflite")])
def test_torch_fixed_batch4_passes_on_every_format(tmp_path, to, suffix):
    import torch

    module = torch_fixed_batch4()
    before = torch_state(module)
    dest = tmp_path / f"b4{suffix}"
    res = convert((module, (torch.randn(4, 3),)), dest, to=to, samples=8)
    assert res["parity"]["passed"], res["parity"]
    assert res["parity"]["batching"]["batch"] == 4 and res["parity"]["batching"]["groups"] == 2
    assert same_state(before, torch_state(module))


def test_a_wrong_batch4_artifact_fails_validate_with_the_grouping_said(tmp_path):
    from edgekit.validation import validate

    convert(keras_fixed_batch(axis=1), tmp_path / "per_sample.tflite")  # normalizes each sample alone
    model = keras_fixed_batch(axis=0)
    before = keras_weights(model)
    res = validate(model, tmp_path / "per_sample.tflite", samples=8)
    assert not res["passed"]
    assert any("groups of 4" in n for n in res["parity"]["notes"])
    assert same_weights(before, keras_weights(model))


# -- what the model is -----------------------------------------------------------------------

def keras_subclass(scale: float = 2.0):
    import keras

    class Scaled(keras.Model):  # defined here, in the user's module: not keras' own
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x) * scale

    keras.utils.set_random_seed(0)
    model = Scaled()
    model(np.zeros((1, 3), "float32"))  # built
    return model


def keras_dict_io(swap: bool = False):
    import keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    score = keras.layers.Dense(1, name="score")(a)
    mixed = keras.layers.Dense(2, name="mixed")(keras.layers.Concatenate()([a, b]))
    return keras.Model({"a": a, "b": b}, {"score": mixed if swap else score, "mixed": score if swap else mixed})


def test_a_keras_model_subclass_from_the_users_module_converts_and_is_checked(tmp_path, monkeypatch):
    model = keras_subclass()
    before = keras_weights(model)
    res = convert(model, tmp_path / "sub.tflite")
    assert res["parity"]["passed"] and res["source"]["framework"] == "keras"
    assert same_weights(before, keras_weights(model))
    wrong_keras_export(monkeypatch, keras_subclass(scale=3.0))
    bad = convert(model, tmp_path / "sub_wrong.tflite")
    expect_kept_on_failure(bad, tmp_path / "sub_wrong.tflite")


def test_a_never_built_keras_subclass_asks_for_its_input_shape(tmp_path):
    import keras

    class Unbuilt(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(BadInput) as err:
        convert(Unbuilt(), tmp_path / "u.tflite")
    assert "--input-shape x=" in err.value.hint
    assert convert(Unbuilt(), tmp_path / "u.tflite", input_shapes={"x": (1, 3)})["parity"]["passed"]


def test_keras_dict_inputs_and_outputs_are_checked_by_name(tmp_path, monkeypatch):
    model = keras_dict_io()
    res = convert(model, tmp_path / "dict.tflite")
    p = res["parity"]
    assert p["passed"], p
    assert {(o["name"], o["candidate_name"]) for o in p["outputs"]} == {("score", "score"), ("mixed", "mixed")}
    assert {i["name"] for i in res["inputs"]} == {"a", "b"}
    wrong_keras_export(monkeypatch, keras_dict_io(swap=True))  # outputs swapped under their names
    bad = convert(model, tmp_path / "dict_wrong.tflite")  # (1,) vs (2,) per sample under one name
    assert "Output 'score'" in bad["parity"]["error"]
    expect_kept_on_failure(bad, tmp_path / "dict_wrong.tflite")


def test_a_trace_with_tracer_warnings_is_refused_with_the_fix(tmp_path):
    import torch

    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # a branch on data: a trace keeps one side
                return x * 2
            return x - 1

    with pytest.raises(Exception) as err:
        convert((Branchy(), (torch.ones(1, 4),)), tmp_path / "b.ptl", to="torchscript")
    assert err.value.exit_code == 2 and "TracerWarning" not in err.value.message
    assert "not faithful" in err.value.message and "torch.jit.script" in err.value.hint
    assert not (tmp_path / "b.ptl").exists()

    class Plain(torch.nn.Module):
        def forward(self, x):
            return torch.where(x.sum() > 0, x * 2, x - 1)

    assert convert((Plain(), (torch.ones(1, 4),)), tmp_path / "p.ptl", to="torchscript")["parity"]["passed"]


def torch_select(threshold: float):
    import torch

    class Select(torch.nn.Module):
        def forward(self, x):
            return x[x > threshold] * 2  # as many values as the data has above the threshold

    return Select(), (torch.rand(1, 6),)


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("torchscript", ".ptl")])
def test_an_output_whose_size_depends_on_the_data_is_compared_as_such(tmp_path, to, suffix):
    from edgekit.validation import validate

    dest = tmp_path / f"select{suffix}"
    res = convert(torch_select(0.5), dest, to=to)
    assert res["parity"]["passed"], res["parity"]
    assert res["parity"]["outputs"][0]["data_dependent_shape"]
    wrong = validate(torch_select(0.4), dest)  # the file keeps other values than this model
    assert not wrong["passed"]
    assert "its size depends on the data" in wrong["parity"]["outputs"][0]["failures"][0]


def two_signature_saved_model(folder, scale: float = 3.0) -> str:
    """A SavedModel with 'serving_default' (encode, (1, 3) → (1, 2)) and 'decode' ((1, 2) → (1, 3))."""
    import tensorflow as tf

    class Codec(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal((3, 2), seed=(1, 2)))

        @tf.function(input_signature=[tf.TensorSpec((1, 3), tf.float32, name="x")])
        def encode(self, x):
            return {"code": tf.matmul(x, self.w)}

        @tf.function(input_signature=[tf.TensorSpec((1, 2), tf.float32, name="c")])
        def decode(self, c):
            return {"recon": tf.matmul(c, self.w, transpose_b=True) * scale}

    codec = Codec()
    tf.saved_model.save(codec, str(folder), signatures={"serving_default": codec.encode, "decode": codec.decode})
    return str(folder)


def test_a_saved_model_with_several_signatures_converts_and_checks_the_chosen_one(tmp_path):
    from edgekit.runtimes import load
    from edgekit.validation import validate

    sm = two_signature_saved_model(tmp_path / "codec")
    res = convert(sm, tmp_path / "enc.tflite")
    assert res["parity"]["passed"] and [o["name"] for o in res["outputs"]] == ["code"]
    assert any("'serving_default' signature" in w and "'decode'" in w for w in res["warnings"])
    dec = convert(sm, tmp_path / "dec.tflite", signature="decode")
    assert dec["parity"]["passed"] and [o["name"] for o in dec["outputs"]] == ["recon"]
    assert [s.shape for s in load(tmp_path / "dec.tflite").inputs] == [(1, 2)]
    assert convert(sm, tmp_path / "enc8.tflite", quantize="int8", calibration="random")["parity"]["passed"]
    with pytest.raises(BadInput) as err:
        convert(sm, tmp_path / "x.tflite", signature="nope")
    assert "serving_default, decode" in err.value.message
    # a wrong decoder (another scale) fails against the chosen signature
    other = two_signature_saved_model(tmp_path / "codec4", scale=4.0)
    convert(other, tmp_path / "dec4.tflite", signature="decode")
    assert not validate(sm, tmp_path / "dec4.tflite", signature="decode")["passed"]


# -- state -----------------------------------------------------------------------------------

def torch_running_mean(keep_state: bool = True):
    """forward() updates a running mean buffer (state) unless KEEP_STATE is False (a wrong twin)."""
    import torch

    class RunningMean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(1, 4))
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            if keep_state:
                self.mean.mul_(0.5).add_(0.5 * x)
            return self.lin(x - self.mean)

    torch.manual_seed(0)
    return RunningMean().eval()


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("torchscript", ".ptl")])
def test_a_torch_module_with_state_is_checked_on_a_stream_and_left_unchanged(tmp_path, to, suffix):
    import torch

    from edgekit.validation import validate

    module = torch_running_mean()
    before = torch_state(module)
    res = convert((module, (torch.rand(1, 4),)), tmp_path / f"run{suffix}", to=to, samples=12)
    p = res["parity"]
    assert p["passed"], p  # the file starts from the model's state, not from what the checks left
    assert p["batching"]["stream"] == {"state": ["mean"], "samples": 12}
    assert any("stream of the 12 samples in order" in n for n in p["notes"])
    assert same_state(before, torch_state(module))
    # a file that drops the state (the same weights, no update) fails on the stream
    convert((torch_running_mean(keep_state=False), (torch.rand(1, 4),)), tmp_path / f"nostate{suffix}", to=to)
    wrong = validate((module, (torch.rand(1, 4),)), tmp_path / f"nostate{suffix}", samples=12)
    assert not wrong["passed"] and "Stateful (mean)" in " ".join(wrong["parity"]["notes"])
    assert same_state(before, torch_state(module))


def test_a_target_path_that_drops_the_state_is_refused_up_front(tmp_path):
    import torch

    from edgekit.errors import UnsupportedModel

    module = torch_running_mean()
    before = torch_state(module)
    with pytest.raises(UnsupportedModel) as err:
        convert((module, (torch.rand(1, 4),)), tmp_path / "run.tflite", to="tflite")
    assert err.value.exit_code == 2 and "keeps state between calls (mean)" in err.value.message
    assert "--to executorch" in err.value.hint and not (tmp_path / "run.tflite").exists()
    assert same_state(before, torch_state(module))


def keras_gru(stateful: bool = True):
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((3, 2), batch_size=1, name="x")
    return keras.Model(x, keras.layers.GRU(4, stateful=stateful, unroll=True, name="gru")(x))


def test_a_stateful_keras_gru_is_fed_a_stream_and_its_state_put_back(tmp_path, monkeypatch):
    model = keras_gru()
    states = lambda: [np.array(v) for v in model.get_layer("gru").states]  # noqa: E731
    before = states()
    res = convert(model, tmp_path / "gru.tflite", samples=10)
    assert res["parity"]["passed"], res["parity"]
    assert res["parity"]["batching"]["stream"]["state"] == ["gru"]
    assert same_weights(before, states())
    wrong_keras_export(monkeypatch, keras_gru(stateful=False))  # a file without state
    with pytest.raises(Exception) as err:
        convert(model, tmp_path / "gru_wrong.tflite")
    assert err.value.exit_code == 2 and "keeps state between calls (gru)" in err.value.message
    assert same_weights(before, states())


# -- what the device will have ---------------------------------------------------------------

def torch_spectrum():
    import torch

    class Spectrum(torch.nn.Module):  # rfft: the host wheel has an optimized kernel, portable has none
        def forward(self, x):
            return torch.view_as_real(torch.fft.rfft(x)) * 2

    return Spectrum(), (torch.randn(1, 8),)


def test_each_op_outside_xnnpack_names_its_kernel_library_and_portable_only_devices_fail(tmp_path):
    import torch

    from edgekit.build import raise_for_parity

    plain = (torch.nn.Sequential(torch.nn.Linear(4, 4)).eval(), (torch.randn(1, 4),))
    ok = convert(plain, tmp_path / "plain.pte", to="executorch")
    assert ok["kernels"]["passed"] and ok["kernels"]["target"] == ["portable"]
    raise_for_parity(ok)  # nothing to raise
    res = convert(torch_spectrum(), tmp_path / "fft.pte", to="executorch")
    assert res["parity"]["passed"]  # it runs on this host ...
    libs = {r["op"]: r["library"] for r in res["kernels"]["ops"]}
    assert libs["aten::_fft_r2c.out"] == "host-only" and libs["aten::view_as_real_copy.out"] == "portable"
    assert res["kernels"]["missing"] == ["aten::_fft_r2c.out"] and not res["kernels"]["passed"]
    assert any("aten::_fft_r2c.out (host-only)" in w for w in res["warnings"])
    with pytest.raises(CheckFailed) as err:  # ... but not on a device runtime with portable kernels only
        raise_for_parity(res)
    assert err.value.exit_code == 1 and "aten::_fft_r2c.out (host wheel only)" in err.value.message
    assert "files written" in err.value.message and (tmp_path / "fft.pte").is_file()
    manifest = json.loads((tmp_path / "fft.pte.json").read_text())
    assert manifest["kernels"]["passed"] is False


def keras_gru_loop(units: int):
    """A GRU that keeps its time loop: its weights live in a WHILE body subgraph."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((5, 32), batch_size=1, name="x")
    return keras.Model(x, keras.layers.GRU(units, unroll=False)(x))


def test_quantization_summaries_read_weights_inside_while_loop_bodies(tmp_path):
    res = convert(keras_gru_loop(64), tmp_path / "loop.tflite", quantize="dynamic-int8")
    q = res["quantization"]
    assert q["subgraphs"] >= 2 and q["weights_by_dtype"].get("int8", 0) >= 2
    assert q["effective"] is True and not any("had no effect" in w for w in res["warnings"])
    assert res["parity"]["passed"]
    small = convert(keras_gru_loop(4), tmp_path / "small.tflite", quantize="dynamic-int8")  # all < 1024 elements
    assert small["quantization"]["effective"] is False
    assert any("had no effect" in w for w in small["warnings"])


# -- never throw away a correct artifact -----------------------------------------------------

def test_a_check_that_fails_to_run_the_built_artifact_keeps_the_files_with_the_cause(tmp_path, monkeypatch):
    import edgekit.runtimes as runtimes
    from edgekit.build import raise_for_parity

    real_load = runtimes.load

    def load_failing(path, *a, **kw):  # the file is whole; running it on the samples fails
        session = real_load(path, *a, **kw)

        def run(feeds):
            raise CheckFailed("The TFLite model failed to run: tensor arena too small", "Reconvert the model.")

        session.run = run
        return session

    monkeypatch.setattr(runtimes, "load", load_failing)
    model = keras_fixed_batch()
    dest = tmp_path / "kept.tflite"
    res = convert(model, dest)
    assert res["parity"]["passed"] is False and "tensor arena too small" in res["parity"]["error"]
    with pytest.raises(CheckFailed) as err:
        raise_for_parity(res)
    assert err.value.exit_code == 1 and "files written" in err.value.message
    assert "failed while being checked: The TFLite model failed to run: tensor arena too small" in err.value.message
    manifest = json.loads(dest.with_name(dest.name + ".json").read_text())
    assert manifest["parity"]["passed"] is False and "tensor arena" in manifest["parity"]["error"]


def test_a_torch_module_handed_over_in_training_mode_keeps_its_mode(tmp_path):
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(4)).train()
    before = torch_state(module)
    res = convert((module, (torch.randn(2, 4),)), tmp_path / "train.pte", to="executorch")
    assert res["parity"]["passed"], res["parity"]  # converted and checked in eval mode, on a copy
    assert module.training and all(m.training for m in module.modules())
    assert same_state(before, torch_state(module))
