"""`edgekit validate --per-layer` with a PyTorch reference: .pte candidates (ETRecord + ETDump)
and .tflite candidates (litert-torch tensor names).

Real frameworks throughout: the digits CNN of tests/converters/torch_nets.py trained here on
scikit-learn's digits (one thread: two threads on a shared 2-core machine make it 6× slower),
converted by edgekit's own converters, and a copy with conv2's weights perturbed, converted the same way.
The perturbed artifacts must fail and be localised at conv2; the faithful ones must pass with
every layer bit-close (so the per-layer matching itself adds no error).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.build import convert
from tests.converters.conftest import NETS

pytestmark = pytest.mark.filterwarnings("ignore")

MODULES = ["conv1", "bn1", "conv2", "fc1", "fc2"]
SAMPLES = "24"

FACTORY = '''
import importlib.util

import torch

_spec = importlib.util.spec_from_file_location("torch_nets_pl", {nets!r})
_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_nets)


def trained():
    net = _nets.DigitsNet()
    net.load_state_dict(torch.load({weights!r}, weights_only=True))
    return net.eval(), (torch.zeros(1, 1, 8, 8),)


def perturbed_conv2():
    net, example = trained()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        w = net.conv2.weight
        w.add_(0.05 * w.std() * torch.randn(w.shape, generator=g))
    return net, example
'''


def _train(digits, path):
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("torch_nets_pl", NETS)
    nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = nets.train_digits_net(digits, epochs=8)
        with torch.no_grad():
            acc = (model(torch.from_numpy(digits["x_test"][:, None])).argmax(1).numpy() == digits["y_test"]).mean()
        assert acc > 0.9  # a trained network, not noise
    finally:
        torch.set_num_threads(threads)
    torch.save(model.state_dict(), path)


@pytest.fixture(scope="module")
def arts(digits, tmp_path_factory):
    """The trained CNN and its conv2-perturbed copy, each as .pte (with ETRecord) and .tflite."""
    d = tmp_path_factory.mktemp("per-layer-torch")
    _train(digits, d / "digits_state.pt")
    np.savez(d / "test.npz", image=digits["x_test"][:, None], labels=digits["y_test"])
    (d / "digits_net.py").write_text(FACTORY.format(nets=str(NETS), weights=str(d / "digits_state.pt")))
    out = {"dir": d, "ref": f"{d / 'digits_net.py'}:trained", "data": d / "test.npz"}
    for name, factory in (("good", "trained"), ("bad", "perturbed_conv2")):
        model = f"{d / 'digits_net.py'}:{factory}"
        out[f"{name}_pte"] = d / f"{name}.pte"
        convert(model, to="executorch", output=out[f"{name}_pte"], validate=False, etrecord=True)
        out[f"{name}_tflite"] = d / f"{name}.tflite"
        convert(model, to="tflite", output=out[f"{name}_tflite"], validate=False)
    return out


def _per_layer(cli, arts, cand):
    return cli("validate", arts["ref"], arts[cand], "--data", arts["data"], "--samples", SAMPLES, "--per-layer", "--json")


def test_converter_writes_etrecord_beside_the_pte(arts):
    pte = arts["good_pte"]
    manifest = json.loads(pte.with_name(pte.name + ".json").read_text())
    assert manifest["etrecord"] == "good.pte.etrecord"
    assert (arts["dir"] / "good.pte.etrecord").is_file()
    assert not list(arts["dir"].glob(".*partial*"))  # no temporary file left behind
    # the ETRecord is the devtools' own format: the Inspector's parser reads it
    from executorch.devtools import parse_etrecord

    rec = parse_etrecord(str(arts["dir"] / "good.pte.etrecord"))
    assert rec.exported_program is not None and rec._representative_inputs


def test_pte_faithful_passes_layer_by_layer(cli, arts):
    r = _per_layer(cli, arts, "good_pte")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["first_divergence"] is None
    assert [row["layer"] for row in res["layers"]] == MODULES  # topological order
    assert all(row["psnr_db"] > 100 and not row["diverged"] for row in res["layers"]), res["layers"]
    # fully delegated to XNNPACK: only the delegate's output is observable in the .pte itself;
    # the modules inside it are named as such and compared in the portable re-lowering
    et = res["executorch"]
    assert [d["backend"] for d in et["delegates"]] == ["XnnpackBackend"]
    assert et["delegates"][0]["modules"] == MODULES
    hidden = {u["layer"]: u["reason"] for u in res["not_observable"]}
    assert set(hidden) == {"conv1", "bn1", "conv2", "fc1"}
    assert all("inside a XnnpackBackend delegate" in why for why in hidden.values())
    observed = {row["layer"]: row["observed"] for row in res["layers"]}
    assert observed == {"conv1": "portable twin", "bn1": "portable twin", "conv2": "portable twin",
                        "fc1": "portable twin", "fc2": "pte"}
    assert "delegate output" in res["layers"][-1]["op_type"]


def test_pte_perturbed_layer_is_the_first_divergence(cli, arts):
    r = _per_layer(cli, arts, "bad_pte")
    assert r.exit_code == 1, r
    res = r.json()
    assert not res["passed"]
    assert res["first_divergence"]["layer"] == "conv2", res["layers"]
    rows = {row["layer"]: row for row in res["layers"]}
    assert rows["conv1"]["psnr_db"] > 100 and rows["bn1"]["psnr_db"] > 100  # upstream: untouched
    assert rows["conv2"]["diverged"] and rows["conv2"]["psnr_db"] < 60
    assert rows["fc2"]["diverged"]  # the delegate's real output diverges too
    assert "conv2" in res["worst_layers"] and len(res["worst_layers"]) == 5
    assert "first divergence: conv2" in r.stderr


def test_tflite_faithful_passes_layer_by_layer(cli, arts):
    r = _per_layer(cli, arts, "good_tflite")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["first_divergence"] is None
    assert [row["layer"] for row in res["layers"]] == ["bn1", "conv2", "fc1", "fc2"]
    assert all(row["psnr_db"] > 100 for row in res["layers"]), res["layers"]
    # conv1+bn1+relu are one DEPTHWISE_CONV_2D: conv1's own output does not exist in the .tflite
    assert [u["layer"] for u in res["not_observable"]] == ["conv1"]
    ops = {row["layer"]: row["op_type"] for row in res["layers"]}
    assert ops["conv2"] == "Conv2d + relu → CONV_2D"  # the fused activation is compared after it


def test_tflite_perturbed_layer_is_the_first_divergence(cli, arts):
    r = _per_layer(cli, arts, "bad_tflite")
    assert r.exit_code == 1, r
    res = r.json()
    assert res["first_divergence"]["layer"] == "conv2", res["layers"]
    rows = {row["layer"]: row for row in res["layers"]}
    assert rows["bn1"]["psnr_db"] > 100 and not rows["bn1"]["diverged"]
    assert rows["conv2"]["psnr_db"] < 60
    assert "first divergence: conv2" in r.stderr


def test_pte_without_etrecord_says_how_to_get_one(cli, arts, tmp_path):
    bare = tmp_path / "bare.pte"
    bare.write_bytes(arts["good_pte"].read_bytes())
    r = cli("validate", arts["ref"], bare, "--samples", "2", "--per-layer")
    assert r.exit_code == 2, r
    assert "ETRecord" in r.stderr and "--etrecord" in r.stderr and "Traceback" not in r.stderr
    # an artifact reference has no module names to match: a clear error, not a wrong table
    r = cli("validate", arts["good_tflite"], arts["good_pte"], "--samples", "2", "--per-layer")
    assert r.exit_code == 2, r
    assert "needs the PyTorch model as the reference" in r.stderr


def test_reference_numbers_are_independent_of_the_candidate(arts):
    """The per-layer reference is the reference module's own graph, not the candidate's ETRecord:
    the perturbed .pte's ETRecord agrees with itself, so comparing against it could not fail."""
    from edgekit.layers import TorchTap
    from edgekit.sources import load_model

    tap = TorchTap(load_model(arts["ref"], {}))
    x = np.load(arts["data"])["image"][:1]
    got = tap.run({"image": x}, {tap.last[m].name for m in tap.modules})
    import torch

    net = load_model(arts["ref"], {}).native
    with torch.no_grad():
        want = net.conv2(torch.relu(net.bn1(net.conv1(torch.from_numpy(x))))).numpy()
    np.testing.assert_allclose(got[tap.last["conv2"].name], want, rtol=1e-5, atol=1e-6)
