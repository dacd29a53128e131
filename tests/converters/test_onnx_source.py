"""An .onnx file as MODEL (`--to onnx`: fixed shapes and a recipe), its reference being the file
run by ONNX Runtime. Real published model: PaddleOCR's PP-OCRv4 text detector as rapidocr ships
it (paddle2onnx export, opset 12, weights as Constant nodes, dynamic batch/height/width), fed
real photographs and scanned text normalised as PaddleOCR does. Bad input: a truncated file, a
dynamic dimension with no shape to take, external data that is not beside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def ppocr_det():
    """The PP-OCRv4 detection model from the rapidocr-onnxruntime wheel."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")  # found, not imported: it imports OpenCV
    if spec is None:
        pytest.skip("rapidocr-onnxruntime is not installed (scripts/setup.sh dev installs it)")
    path = Path(spec.origin).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def ocr_photos(tmp_path_factory):
    """48 crops (160x160) of skimage's scanned text, page, coffee and cat photos, NCHW, normalised
    with ImageNet's mean/std as PaddleOCR's det preprocessing does; split calibration / check."""
    import skimage.data as data
    import skimage.transform as transform

    rng = np.random.RandomState(0)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    crops = []
    for im in (data.text(), data.page(), data.coffee(), data.chelsea()):
        im = np.stack([im] * 3, -1) if im.ndim == 2 else im
        for _ in range(12):
            h, w = im.shape[:2]
            ch, cw = rng.randint(h // 2, h), rng.randint(w // 2, w)
            y, x = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
            c = transform.resize(im[y:y + ch, x:x + cw], (160, 160), anti_aliasing=True)
            crops.append(((c - mean) / std).transpose(2, 0, 1).astype(np.float32))
    a = np.stack(crops)
    rng.shuffle(a)
    d = tmp_path_factory.mktemp("ocr")
    np.save(d / "calib.npy", a[::2])
    np.save(d / "check.npy", a[1::2])
    return d


def test_published_onnx_fixed_shapes_and_fp16(cli, ppocr_det, ocr_photos, tmp_path):
    """Shapes come from the data (the model's are ?x3x?x?); the float file is the same model
    (bit-exact on ONNX Runtime), fp16 keeps it (weights were Constant nodes: folded first, else
    ONNX Runtime's tools see no weights)."""
    r = cli("convert", ppocr_det, "--to", "onnx", "--data", ocr_photos / "check.npy", "-o", tmp_path / "det.onnx",
            "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["shape"] == [1, 3, 160, 160] and res["opset"] == 12
    assert res["parity"]["outputs"][0]["psnr_db"] >= 60
    h = cli("convert", ppocr_det, "--to", "onnx", "--quantize", "fp16", "--data", ocr_photos / "check.npy",
            "-o", tmp_path / "det_fp16.onnx", "--json")
    assert h.exit_code == 0, h
    q = h.json()["quantization"]
    assert q["effective"] and q["weights_by_dtype"]["float16"] > 200
    assert h.json()["parity"]["outputs"][0]["psnr_db"] > 40


def test_published_onnx_int8_verdict_is_the_measured_one(cli, ppocr_det, ocr_photos, tmp_path):
    """int8 (QDQ, per-channel: the opset-12 file is upgraded to 13 first, or the graph is invalid)
    on real inputs. Measured: cosine 0.92, PSNR 21.8 dB on the text-probability map, below the
    int8 preset's 0.95 (INT8_CAUSE): edgekit says so (exit 1, files written), it does not pass it."""
    out = tmp_path / "det_int8.onnx"
    r = cli("convert", ppocr_det, "--to", "onnx", "--quantize", "int8", "--calibration", ocr_photos / "calib.npy",
            "--data", ocr_photos / "check.npy", "-o", out, "--json")
    res = r.json()
    o = res["parity"]["outputs"][0]
    assert res["quantization"]["fallback"]["status"] == "full" and res["size_bytes"] < 0.35 * ppocr_det.stat().st_size
    assert out.exists() and 0.85 < o["cosine"] < 0.99 and o["psnr_db"] > 18
    assert (r.exit_code == 0) == res["parity"]["passed"] and (o["cosine"] >= 0.95) == res["parity"]["passed"]


INT8_CAUSE = """Measured cause of the remaining gap (issue 14): per-tensor int8 activations. PP-LCNetV3's
activations reach ~2000 with a standard deviation ~200 (a few channels carry the outliers), and
no op type is to blame: excluding any one op type from ORT's QDQ (Add, Mul, Clip, Div, Resize,
Concat, HardSigmoid, GlobalAveragePool, ConvTranspose, Sigmoid, ...) moves cosine by <= 0.01;
keeping the first 10 nodes float reaches 0.937. Percentile/Entropy calibration and symmetric
activations do not help ORT (0.889 / 0.920 / 0.885); fusing the decomposed hard-swish and folding
the scalar affine ops into the convs made both runtimes slightly worse. PT2E with MinMax
activation observers lands where ORT does (0.918), its HistogramObserver at 0.878."""


@pytest.mark.slow
def test_published_onnx_int8_pte_verdict_is_the_measured_one(cli, ppocr_det, ocr_photos, tmp_path):
    """int8 .pte (PT2E, XNNPACK) of the detector on real inputs. It had cosine 0.14: PT2E's
    quantizers floor every per-channel weight scale at 2**-12, and PP-LCNetV3's folded convs have
    many channels of weights below 0.031 (edgekit.quantization.pt2e_floor lowers the floor).
    Measured now: cosine 0.875, 19.8 dB, still under the int8 preset's 0.95 (INT8_CAUSE): edgekit
    says so (exit 1, file written)."""
    out = tmp_path / "det_int8.pte"
    r = cli("convert", ppocr_det, "--to", "executorch", "--quantize", "int8", "--calibration",
            ocr_photos / "calib.npy", "--data", ocr_photos / "check.npy", "--samples", "12", "-o", out, "--json")
    res = r.json()
    o = res["parity"]["outputs"][0]
    assert out.exists() and res["quantization"]["pt2e"]["quantize"] > 300
    assert 0.8 < o["cosine"] < 0.99 and o["psnr_db"] > 17, o
    assert (r.exit_code == 0) == res["parity"]["passed"] and (o["cosine"] >= 0.95) == res["parity"]["passed"]


@pytest.mark.slow
def test_published_onnx_int8_tflite_verdict_is_the_measured_one(cli, ppocr_det, ocr_photos, tmp_path):
    """int8 .tflite (PT2E with litert-torch's quantizer) of the detector on real inputs. It had
    cosine 0.0 (PSNR 13.9 dB) while the weight-scale floor reached this path; unfloored as the
    .pte is (edgekit.quantization.pt2e_floor) it measures cosine 0.877, 19.9 dB, still under the
    int8 preset's 0.95 (INT8_CAUSE): reported so (exit 1, file written)."""
    out = tmp_path / "det_int8.tflite"
    r = cli("convert", ppocr_det, "--to", "tflite", "--quantize", "int8", "--calibration", ocr_photos / "calib.npy",
            "--data", ocr_photos / "check.npy", "--samples", "12", "-o", out, "--json")
    res = r.json()
    o = res["parity"]["outputs"][0]
    assert out.exists() and "PT2E" in res["quantization"]["method"] and res["inputs"][0]["dtype"] == "int8"
    assert 0.8 < o["cosine"] < 0.99 and o["psnr_db"] > 17, o
    assert (r.exit_code == 0) == res["parity"]["passed"] and (o["cosine"] >= 0.95) == res["parity"]["passed"]


def test_dynamic_dimension_without_shape_or_data(cli, ppocr_det, tmp_path):
    r = cli("convert", ppocr_det, "--to", "onnx", "-o", tmp_path / "det.onnx")
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r
    assert "dynamic dimension" in r.stderr and "--input-shape x=" in r.stderr
    assert not list(tmp_path.iterdir())


def test_truncated_onnx(cli, ppocr_det, tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(ppocr_det.read_bytes()[:100_000])
    r = cli("convert", bad, "--to", "onnx", "--input-shape", "x=1x3x64x64", "-o", tmp_path / "out.onnx")
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r
    assert "not a readable ONNX model" in r.stderr and not (tmp_path / "out.onnx").exists()


def test_external_data_read_and_missing(cli, torch_digits, tmp_path):
    """torch.onnx writes large weights beside the model (model.onnx.data): read from there; the
    model without its data file is refused naming it, nothing written."""
    import onnx

    src = tmp_path / "src"
    src.mkdir()
    r = cli("convert", *torch_digits["args"], "--to", "onnx", "--no-validate", "-o", src / "plain.onnx")
    assert r.exit_code == 0, r
    model = onnx.load(str(src / "plain.onnx"))
    onnx.save(model, str(src / "net.onnx"), save_as_external_data=True, location="net.onnx.data",
              size_threshold=0)
    assert (src / "net.onnx.data").stat().st_size > 10_000
    ok = cli("convert", src / "net.onnx", "--to", "onnx", "--quantize", "int8", "--calibration", torch_digits["calib"],
             "--data", torch_digits["test"], "-o", tmp_path / "net_int8.onnx", "--json")
    assert ok.exit_code == 0, ok
    assert ok.json()["parity"]["accuracy"]["delta"] > -0.02
    (src / "net.onnx.data").rename(src / "elsewhere.data")
    gone = cli("convert", src / "net.onnx", "--to", "onnx", "-o", tmp_path / "again.onnx")
    assert gone.exit_code == 2 and "net.onnx.data" in gone.stderr and "Traceback" not in gone.stderr, gone
    assert not (tmp_path / "again.onnx").exists()


def test_output_never_overwrites_the_model(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "onnx", "--no-validate", "-o", tmp_path / "m.onnx")
    assert r.exit_code == 0, r
    before = (tmp_path / "m.onnx").read_bytes()
    same = cli("convert", tmp_path / "m.onnx", "--to", "onnx", "-o", tmp_path / "m.onnx")
    assert same.exit_code == 2 and "the model itself" in same.stderr
    assert (tmp_path / "m.onnx").read_bytes() == before
    default = cli("convert", tmp_path / "m.onnx", "--to", "onnx", "--no-validate", cwd=tmp_path)
    assert default.exit_code == 0 and (tmp_path / "m_static.onnx").exists()
    assert (tmp_path / "m.onnx").read_bytes() == before


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("tflite", ".tflite")])
def test_published_onnx_to_pte_and_tflite(cli, ppocr_det, ocr_photos, tmp_path, to, suffix):
    """PP-OCRv4's detector → .pte (XNNPACK) and .tflite through onnx2torch, fp32 parity against
    the .onnx on ONNX Runtime, on real inputs (measured: 125 dB both)."""
    r = cli("convert", ppocr_det, "--to", to, "--data", ocr_photos / "check.npy", "--samples", "8",
            "-o", tmp_path / f"det{suffix}", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["converted_via"] == "onnx2torch" and res["inputs"][0]["name"] == "x"
    assert res["parity"]["outputs"][0]["psnr_db"] >= 60


def test_published_onnx_classifier_to_pte(cli, tmp_path):
    """PaddleOCR's text-direction classifier (Reshape and Slice on constant shapes: onnx2torch's
    modules for them are swapped for ones torch.export can trace) → .pte at fp32 parity."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None:
        pytest.skip("rapidocr-onnxruntime is not installed (scripts/setup.sh dev installs it)")
    import skimage.data as data
    import skimage.transform as transform

    crops = [transform.resize(data.text()[y:y + 60, x:x + 240], (48, 192), anti_aliasing=True)
             for y, x in ((0, 0), (40, 30), (80, 100), (120, 200), (150, 60), (100, 10))]
    np.save(tmp_path / "lines.npy", np.stack([((np.stack([c] * 3) - 0.5) / 0.5) for c in crops]).astype(np.float32))
    model = Path(spec.origin).parent / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    r = cli("convert", model, "--to", "executorch", "--data", tmp_path / "lines.npy", "-o", tmp_path / "cls.pte",
            "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["outputs"][0]["psnr_db"] >= 60 and r.json()["parity"]["outputs"][0]["top1_agreement"] == 1


BLOCK_ONNX2TORCH = '''
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnx2torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
'''


def test_without_onnx2torch_the_install_line(ppocr_det, tmp_path):
    """onnx2torch made unimportable in a real edgekit process: exit 3 naming it and its install
    line; --to onnx still works without it."""
    import os
    import subprocess

    from tests.conftest import edgekit_cmd

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_ONNX2TORCH)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    args = [str(ppocr_det), "--input-shape", "x=1x3x64x64", "--no-validate"]
    p = subprocess.run([*edgekit_cmd(), "convert", *args, "--to", "executorch", "-o", str(tmp_path / "d.pte")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 3 and "pip install --no-deps onnx2torch==1.5.15" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "d.pte").exists()
    ok = subprocess.run([*edgekit_cmd(), "convert", *args, "--to", "onnx", "-o", str(tmp_path / "d.onnx")],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr


def test_ops_no_hop_supports_are_named(cli, tmp_path):
    """Det has no onnx2torch converter; NonMaxSuppression needs torchvision, which cannot be
    imported beside this torch: each is named with the hop, exit 2, nothing written (both run on
    ONNX Runtime, so --to onnx keeps them)."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    g = h.make_graph([h.make_node("Det", ["x"], ["y"])], "det", [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 3])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1])])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), str(tmp_path / "det.onnx"))
    g = h.make_graph([h.make_node("NonMaxSuppression", ["boxes", "scores", "k"], ["sel"])], "nms",
                     [h.make_tensor_value_info("boxes", T.FLOAT, [1, 10, 4]),
                      h.make_tensor_value_info("scores", T.FLOAT, [1, 1, 10])],
                     [h.make_tensor_value_info("sel", T.INT64, [None, 3])],
                     initializer=[h.make_tensor("k", T.INT64, [1], [5])])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), str(tmp_path / "nms.onnx"))
    try:
        import torchvision  # noqa: F401
        cases = [("det.onnx", "onnx2torch cannot convert")]  # a working torchvision converts NMS
    except Exception:  # this machine: torchvision missing or a CUDA build
        cases = [("det.onnx", "onnx2torch cannot convert"), ("nms.onnx", "NonMaxSuppression")]
    out = tmp_path / "out"
    out.mkdir()
    for model, words in cases:
        r = cli("convert", tmp_path / model, "--to", "executorch", "-o", out / "m.pte")
        assert r.exit_code == 2 and words in r.stderr and "Traceback" not in r.stderr, r
        assert not list(out.iterdir())
    ok = cli("convert", tmp_path / "det.onnx", "--to", "onnx", "-o", out / "det_static.onnx")
    assert ok.exit_code == 0, ok


def _text_lines(n: int = 8, width: int = 320) -> np.ndarray:
    """Text-line crops of skimage's scanned text and page, as PaddleOCR's recognizer
    preprocessing feeds them: grey → 3 channels, height 48, width by aspect ratio (at most
    WIDTH), (x/255 - 0.5)/0.5, zero padding on the right. Shape (n, 3, 48, WIDTH), float32."""
    import skimage.data as data
    import skimage.transform as transform

    boxes = [(data.text(), (0, 0, 44, 440)), (data.text(), (40, 10, 90, 300)), (data.text(), (85, 0, 130, 448)),
             (data.text(), (125, 20, 172, 400)), (data.page(), (0, 0, 40, 384)), (data.page(), (45, 0, 90, 300)),
             (data.page(), (95, 30, 140, 384)), (data.page(), (140, 0, 191, 350))]
    out = []
    for im, (y0, x0, y1, x1) in boxes[:n]:
        crop = im[y0:y1, x0:x1].astype(np.float64) / 255.0
        w = min(width, int(np.ceil(48 * crop.shape[1] / crop.shape[0])))
        line = np.zeros((3, 48, width), np.float32)
        line[:, :, :w] = (transform.resize(crop, (48, w), anti_aliasing=True) - 0.5) / 0.5
        out.append(line)
    return np.stack(out)


@pytest.fixture(scope="module")
def ppocr_rec(tmp_path_factory):
    """(PP-OCRv4 recognizer from the rapidocr wheel, .npy of 8 real text lines 1x3x48x320)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None:
        pytest.skip("rapidocr-onnxruntime is not installed (scripts/setup.sh dev installs it)")
    lines = tmp_path_factory.mktemp("rec") / "lines.npy"
    np.save(lines, _text_lines())
    return Path(spec.origin).parent / "models" / "ch_PP-OCRv4_rec_infer.onnx", lines


@pytest.mark.slow
def test_published_recognizer_to_pte_on_text_lines(cli, ppocr_rec, tmp_path):
    """PP-OCRv4's recognizer (SVTR-LCNet: convs, then attention blocks with LayerNorm, MatMul and
    Softmax) → .pte at fp32 parity on real text lines; the per-step character distribution
    (softmax over 6625 classes) matches ONNX Runtime's (measured 149 dB on random inputs)."""
    model, lines = ppocr_rec
    r = cli("convert", model, "--to", "executorch", "--data", lines, "-o", tmp_path / "rec.pte", "--json")
    assert r.exit_code == 0, r
    o = r.json()["parity"]["outputs"][0]
    assert r.json()["inputs"][0]["shape"] == [1, 3, 48, 320] and o["psnr_db"] >= 60 and o["cosine"] > 0.9999


@pytest.mark.slow
def test_published_recognizer_to_tflite_on_text_lines(cli, ppocr_rec, tmp_path):
    """The recognizer → .tflite at fp32 parity on real text lines, every build. It used to pass in
    about one build of three: litert-torch's constant cache gave the second attention block the
    first block's weights (converters/_litert_consts.py; test_litert_constants.py)."""
    model, lines = ppocr_rec
    for build in ("a", "b"):
        r = cli("convert", model, "--to", "tflite", "--data", lines, "-o", tmp_path / f"rec_{build}.tflite", "--json")
        assert r.exit_code == 0, r
        o = r.json()["parity"]["outputs"][0]
        assert o["psnr_db"] >= 60 and o["cosine"] >= 0.9999, o


POOLED_CNN = '''import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, image):
        pooled = torch.relu(self.conv(image)).mean((2, 3), keepdim=True)  # ONNX opset 18: ReduceMean-18
        return self.fc(pooled.reshape(1, 8))


def net():
    return Net().eval(), (torch.zeros(1, 3, 16, 16),)
'''


def test_pytorch_cnn_through_onnx_to_pte(cli, tmp_path):
    """PyTorch → .onnx (torch.onnx, opset 18) → .pte: the global mean becomes ReduceMean-18 and
    the reshape carries allowzero=1, neither of which onnx2torch 1.5.15 converts; edgekit rewrites
    them exactly (GlobalAveragePool; allowzero dropped for a shape without 0) and the .pte matches
    the .onnx on ONNX Runtime."""
    (tmp_path / "pooled.py").write_text(POOLED_CNN)
    r = cli("convert", f"{tmp_path / 'pooled.py'}:net", "--to", "onnx", "--no-validate", "-o", tmp_path / "p.onnx")
    assert r.exit_code == 0, r
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32))
    p = cli("convert", tmp_path / "p.onnx", "--to", "executorch", "--data", tmp_path / "x.npy", "-o",
            tmp_path / "p.pte", "--json")
    assert p.exit_code == 0, p
    assert p.json()["converted_via"] == "onnx2torch" and p.json()["parity"]["outputs"][0]["psnr_db"] >= 60


def test_detector_biases_reshaped_for_ai_edge_quantizer(cli, ppocr_det, ocr_photos, tmp_path):
    """litert-torch writes the detector's first TRANSPOSE_CONV bias (a folded batch norm) as
    (1, 1, 1, 24); ai-edge-quantizer's static int8 gave it 24 scales on axis 0, a file LiteRT
    refused ("num_scales must be 1 ..."), so the int8 search on the detector was exit 2.
    quantization.tflite.flat_biases makes it (24,): same outputs, and the int8 file loads."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer as aeq
    from ai_edge_quantizer import recipe

    from edgekit.quantization.tflite import flat_biases, subgraphs

    r = cli("convert", ppocr_det, "--to", "tflite", "--data", ocr_photos / "check.npy", "--samples", "8",
            "-o", tmp_path / "det.tflite")
    assert r.exit_code == 0, r
    fp32 = (tmp_path / "det.tflite").read_bytes()
    tensors, ops, _ = subgraphs(tmp_path / "det.tflite")[0]
    biases = [tensors[op["inputs"][3]]["shape"] for op in ops if op["op_name"] == "TRANSPOSE_CONV"]
    assert [1, 1, 1, 24] in [[int(d) for d in b] for b in biases]
    flat = flat_biases(fp32)
    x = np.load(ocr_photos / "calib.npy")[:2]

    def run(model: bytes) -> np.ndarray:
        it = Interpreter(model_content=model)
        key, sig = next(iter(it.get_signature_list().items()))
        runner = it.get_signature_runner(key)
        return np.concatenate([next(iter(runner(**{sig["inputs"][0]: s[None]}).values())) for s in x])

    assert np.abs(run(flat) - run(fp32)).max() < 1e-4
    qz = aeq.Quantizer(flat)
    qz.load_quantization_recipe(recipe.static_wi8_ai8())
    it = Interpreter(model_content=flat)
    key, sig = next(iter(it.get_signature_list().items()))
    stats = qz.calibrate({key: [{sig["inputs"][0]: s[None]} for s in x]})
    int8 = bytes(qz.quantize(stats, enable_progress_report=False).quantized_model)
    loaded = Interpreter(model_content=int8)  # raised "num_scales must be 1 ..." before
    loaded.allocate_tensors()
    assert loaded.get_input_details()[0]["dtype"] == np.int8


def test_onnx_to_edgetpu_is_full_int8_with_a_prediction(cli, torch_digits, tmp_path):
    """`--to edgetpu` takes an ONNX model as `--to tflite` does (onnx2torch, then litert-torch's
    full int8), checked against ONNX Runtime, with the offline Edge TPU prediction (and the
    compiler's file where edgetpu_compiler is installed)."""
    import shutil

    r = cli("convert", *torch_digits["args"], "--to", "onnx", "--no-validate", "-o", tmp_path / "digits.onnx")
    assert r.exit_code == 0, r
    out = tmp_path / "digits_int8.tflite"
    e = cli("convert", tmp_path / "digits.onnx", "--to", "edgetpu", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--data", torch_digits["test"], "--samples", "64", "-o", out, "--json")
    assert e.exit_code == 0, e
    res = e.json()
    assert res["converted_via"] == "onnx2torch" and res["inputs"][0]["dtype"] == "int8" and res["parity"]["passed"]
    assert res["edgetpu"]["prediction"]["total_ops"] > 0 and res["edgetpu"]["prediction"]["model"] == str(out)
    if shutil.which("edgetpu_compiler") is None:
        assert any("edgetpu_compiler is not on PATH" in w for w in res["warnings"])
    else:  # pragma: no cover - only where Coral's compiler is installed
        assert (tmp_path / "digits_int8_edgetpu.tflite").is_file()


def _text_direction_lines(n: int = 60) -> np.ndarray:
    """N text-line crops of skimage's scanned text and page, half of them upside down (what the
    text-direction classifier tells apart), as PaddleOCR's cls preprocessing feeds them: grey → 3
    channels, 48x192, (x/255 - 0.5)/0.5. Shape (N, 3, 48, 192), float32, shuffled."""
    import skimage.data as data
    import skimage.transform as transform

    rng = np.random.RandomState(0)
    lines = []
    for im in (data.text(), data.page()):
        h, w = im.shape
        for _ in range(n // 2):
            lh, lw = rng.randint(30, 60), rng.randint(120, min(w, 400))
            y, x = rng.randint(0, h - lh), rng.randint(0, w - lw)
            c = transform.resize(im[y:y + lh, x:x + lw] / 255.0, (48, 192), anti_aliasing=True)
            if rng.rand() < 0.5:
                c = c[::-1, ::-1]
            lines.append(((np.stack([c] * 3) - 0.5) / 0.5).astype(np.float32))
    a = np.stack(lines)
    rng.shuffle(a)
    return a


@pytest.mark.slow
def test_published_classifier_int8_meets_the_int8_preset(cli, tmp_path):
    """PaddleOCR's text-direction classifier (published .onnx) in full int8 on real text lines,
    20 calibration / 40 checked, within the int8 preset on both targets: the .pte with every op
    delegated to XNNPACK (measured cosine 0.994, top-1 agreement 0.90), the .tflite with no float
    op (cosine 0.9946, top-1 0.90). The .tflite had 53 float ops (the hard-sigmoids' MUL, ADD and
    clip, the squeeze-excitation MEANs and MULs, the SOFTMAX) while litert-torch's quantizer
    annotated them only through source_fn_stack (pt2e.annotate_by_target)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None:
        pytest.skip("rapidocr-onnxruntime is not installed (scripts/setup.sh dev installs it)")
    model = Path(spec.origin).parent / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    lines = _text_direction_lines()
    np.save(tmp_path / "calib.npy", lines[:20])
    np.save(tmp_path / "check.npy", lines[20:])
    args = ("--quantize", "int8", "--calibration", tmp_path / "calib.npy", "--data", tmp_path / "check.npy", "--json")
    pte = cli("convert", model, "--to", "executorch", *args, "-o", tmp_path / "cls.pte")
    assert pte.exit_code == 0, pte
    res = pte.json()
    o = res["parity"]["outputs"][0]
    assert res["parity"]["precision"] == "int8" and o["cosine"] >= 0.95 and o["top1_agreement"] >= 0.85, o
    assert res["delegation"]["delegated_ops"] == res["delegation"]["total_ops"] and not res["delegation"]["not_delegated"]
    lite = cli("convert", model, "--to", "tflite", *args, "-o", tmp_path / "cls.tflite")
    assert lite.exit_code == 0, lite
    q, o = lite.json()["quantization"], lite.json()["parity"]["outputs"][0]
    assert lite.json()["parity"]["passed"] and o["cosine"] >= 0.95 and o["top1_agreement"] >= 0.85, o
    assert not q.get("float_ops_by_type") and q["weights_by_dtype"].get("int8", 0) > 0, q
