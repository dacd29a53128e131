"""The reliability table: each case makes a hostile or mistaken input in the case's folder
(`{t}` in argv), runs one command, and names the exit code and what the first line of the error
must say. Shared inputs (`{tiny_keras}`, `{tiny_tflite}`, ...; tests/reliability/conftest.py)
are only read. `process=True` runs a real `edgekit` process (hangs, TMPDIR, leftovers)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

MODELS = str(Path(__file__).parents[1] / "models_keras.py")


@dataclass
class World:
    """What a setup gets: T the case's folder, A the shared assets {name: path}, MP monkeypatch."""

    t: Path
    a: dict
    mp: object

    def write(self, name: str, data) -> Path:
        p = self.t / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def cut(self, asset: str, name: str, frac: float = 0.5) -> Path:
        data = self.a[asset].read_bytes()
        return self.write(name, data[: int(len(data) * frac)])


@dataclass
class Case:
    id: str
    setup: Callable[[World], None] | None
    argv: list[str]
    code: int
    first: str = ""
    process: bool = False
    timeout: float = 60
    creates: list[str] = field(default_factory=list)


def w(name, data):
    return lambda x: x.write(name, data)


def npy(name, arr, **kw):
    return lambda x: np.save(x.t / name, arr, **kw)


def npz(name, **arrays):
    return lambda x: np.savez(x.t / name, **arrays)


def fifo(name):
    return lambda x: os.mkfifo(x.t / name)


def link(name, target):
    return lambda x: os.symlink(target, x.t / name)


def both(*setups):
    def run(x):
        for s in setups:
            s(x)
    return run


def copy_asset(asset, name, with_manifest=False):
    def run(x):
        shutil.copy(x.a[asset], x.t / name)
        if with_manifest:
            shutil.copy(str(x.a[asset]) + ".json", x.t / (name + ".json"))
    return run


def zipped(name, members: dict):
    def run(x):
        with zipfile.ZipFile(x.t / name, "w") as z:
            for k, v in members.items():
                z.writestr(k, v)
    return run


def enospc(when: Callable[[Path], bool]):
    """Disk full for the files WHEN selects: Path.write_text/write_bytes raise ENOSPC."""
    def run(x):
        for meth in ("write_text", "write_bytes"):
            orig = getattr(Path, meth)

            def full(self, *a, _orig=orig, **k):
                if when(self):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
                return _orig(self, *a, **k)
            x.mp.setattr(Path, meth, full)
    return run


def bug(x):
    from edgekit import report_files

    def broken(report):
        raise ZeroDivisionError("division by zero")
    x.mp.setattr(report_files, "to_markdown", broken)


def report(mutate):
    from tests.reliability.conftest import valid_report

    def run(x):
        r = valid_report()
        mutate(r)
        x.write("report.json", json.dumps(r))
    return run


def sparse(name, size):
    def run(x):
        with open(x.t / name, "wb") as f:
            f.truncate(size)
    return run


PIPE = "model: {model}\nbuilds:\n  - {name: fp32, to: tflite}\n"


def pipeline(text, model="m.keras"):
    """edgekit.yaml with TEXT (`{model}` filled) beside a copy of tiny.keras as m.keras."""
    return both(copy_asset("tiny_keras", "m.keras"), w("edgekit.yaml", text.replace("{model}", model)))


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "model: m.keras\n"
MATRIX = "model: m.keras\nbuilds:\n  matrix:\n" + "".join(
    f"    {k}: [{', '.join(str(i) for i in range(40))}]\n" for k in ("to", "quantize", "io_dtype", "calibration",
                                                                    "allow_tf_ops"))
LONG = "n" * 240 + ".tflite"  # 247 bytes: legal; its temporary names must stay under 255
CONV = ["convert", "{tiny_keras}", "-o", "{t}/o.tflite"]
VAL = ["validate", "{tiny_keras}", "{tiny_tflite}"]
PROF = ["profile", "{tiny_tflite}", "--runs", "1", "--warmup", "0", "--no-ops"]

CASES = [
    # --- the model file ---------------------------------------------------------------------
    Case("model-missing", None, ["convert", "{t}/nope.keras", "-o", "{t}/o.tflite"], 2, "does not exist"),
    Case("model-wrong-extension", w("m.txt", "hi"), ["convert", "{t}/m.txt", "-o", "{t}/o.tflite"], 2,
         "does not know the model format"),
    Case("model-empty-keras", w("m.keras", b""), ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2, "is empty"),
    Case("model-empty-h5", w("m.h5", b""), ["convert", "{t}/m.h5", "-o", "{t}/o.tflite"], 2, "is empty"),
    Case("model-empty-pt2", w("m.pt2", b""), ["convert", "{t}/m.pt2", "-o", "{t}/o.pte", "--to", "executorch"], 2,
         "is empty"),
    Case("model-truncated-keras", lambda x: x.cut("tiny_keras", "m.keras"), ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"],
         2, "truncated or corrupt"),
    Case("model-text-as-keras", w("m.keras", "not a model"), ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2,
         "not a Keras archive"),
    Case("model-truncated-h5", lambda x: x.cut("tiny_h5", "m.h5", 0.3), ["convert", "{t}/m.h5", "-o", "{t}/o.tflite"], 2,
         "Keras cannot load"),
    Case("model-text-as-h5", w("m.h5", "not a model"), ["convert", "{t}/m.h5", "-o", "{t}/o.tflite"], 2,
         "not an HDF5 file"),
    Case("model-truncated-pt2", lambda x: x.cut("tiny_pt2", "m.pt2"), ["convert", "{t}/m.pt2", "-o", "{t}/o.pte",
         "--to", "executorch"], 2, "not a whole .pt2 archive"),
    Case("model-text-as-pt2", w("m.pt2", "not a model"), ["convert", "{t}/m.pt2", "-o", "{t}/o.pte", "--to",
         "executorch"], 2, "not a whole .pt2 archive"),
    Case("model-zip-not-pt2", zipped("m.pt2", {"readme.txt": "hello"}), ["convert", "{t}/m.pt2", "-o", "{t}/o.pte",
         "--to", "executorch"], 2, "torch.export.load cannot read"),
    Case("model-unregistered-custom-layer", None, ["convert", "{custom_keras}", "-o", "{t}/o.tflite"], 2,
         "could not locate class 'Doubler'"),
    Case("model-fifo", fifo("m.keras"), ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2, "named pipe"),
    Case("model-device", link("m.keras", "/dev/zero"), ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2, "a device"),
    Case("model-artifact-as-source", None, ["convert", "{tiny_tflite}", "-o", "{t}/o.tflite"], 2,
         "does not know the model format"),
    Case("model-ptl-as-source", w("m.ptl", "x"), ["convert", "{t}/m.ptl", "-o", "{t}/o.pte", "--to", "executorch"], 2,
         "lite-interpreter file"),
    Case("model-state-dict-pt", w("m.pt", b"\x80\x02}q\x00."), ["convert", "{t}/m.pt", "-o", "{t}/o.pte", "--to",
         "executorch"], 2, "not a TorchScript file"),
    Case("model-savedmodel-folder-empty", lambda x: (x.t / "sm").mkdir(), ["convert", "{t}/sm", "-o", "{t}/o.tflite"], 2,
         "not a TensorFlow SavedModel"),
    Case("factory-file-missing", None, ["convert", "{t}/nope.py:build", "-o", "{t}/o.tflite"], 2, "does not exist"),
    Case("factory-not-a-model", None, ["convert", MODELS + ":not_a_model", "-o", "{t}/o.tflite"], 2,
         "which is not a model edgekit can convert"),
    Case("factory-needs-argument", None, ["convert", MODELS + ":needs_argument", "-o", "{t}/o.tflite"], 2, "needs_argument"),
    Case("factory-no-such-function", None, ["convert", MODELS + ":nothing", "-o", "{t}/o.tflite"], 2, "no attribute"),
    # --- --input-shape ------------------------------------------------------------------------
    Case("shape-garbage", None, CONV + ["--input-shape", "x=abc"], 2, "Cannot parse the shape"),
    Case("shape-negative", None, CONV + ["--input-shape", "x=1x-8"], 2, "Cannot parse the shape"),
    Case("shape-empty", None, CONV + ["--input-shape", ""], 2, "Cannot parse the shape"),
    Case("shape-zero", None, CONV + ["--input-shape", "x=1x0"], 2, "zero dimension"),
    Case("shape-huge", None, CONV + ["--input-shape", "x=1x3x100000x100000"], 2, "over edgekit's limit of 268,435,456"),
    Case("shape-unknown-name", None, CONV + ["--input-shape", "y=1x8"], 2, "has no input of that name"),
    Case("shape-wrong-rank", None, CONV + ["--input-shape", "x=1x8x8"], 2, "has 3 dimensions"),
    Case("shape-contradicts-model", None, CONV + ["--input-shape", "x=1x9"], 2, "contradicts"),
    # --- recipes and formats -----------------------------------------------------------------
    Case("to-unknown", None, CONV + ["--to", "coreml"], 2, "Invalid value for '--to'"),
    Case("quantize-unknown", None, CONV + ["--quantize", "int3"], 2, "Invalid value for '--quantize'"),
    Case("int8-without-calibration", None, CONV + ["--quantize", "int8"], 2, "needs calibration data"),
    Case("io-dtype-without-int8", None, CONV + ["--io-dtype", "int8"], 2, "--io-dtype int8"),
    Case("keras-to-torchscript", None, ["convert", "{tiny_keras}", "--to", "torchscript", "-o", "{t}/o.ptl"], 2, "keras"),
    Case("output-suffix-mismatch", None, ["convert", "{tiny_keras}", "-o", "{t}/o.pte", "--no-validate"], 2,
         "does not end in .tflite"),
    # --- the output ---------------------------------------------------------------------------
    Case("output-is-folder", lambda x: (x.t / "out").mkdir(), ["convert", "{tiny_keras}", "-o", "{t}/out"], 2, "is a folder"),
    Case("output-folder-missing", None, ["convert", "{tiny_keras}", "-o", "{t}/no/such/o.tflite"], 2,
         "output folder"),
    Case("output-unwritable", None, ["convert", "{tiny_keras}", "-o", "/proc/o.tflite"], 2, "Cannot write to /proc"),
    Case("output-name-too-long", None, ["convert", "{tiny_keras}", "-o", "{t}/" + "n" * 300 + ".tflite"], 2,
         "this file system allows 255"),
    Case("output-path-too-long", None, ["convert", "{tiny_keras}", "-o", "{t}/" + "/".join(["d" * 200] * 22) + "/o.tflite"],
         2, "the system allows"),
    Case("output-247-byte-name", None, ["convert", "{tiny_keras}", "--no-validate", "-o", "{t}/" + LONG], 0,
         creates=[LONG, LONG + ".json"]),
    Case("disk-full-manifest", enospc(lambda p: p.name.endswith(".partial.json")),
         ["convert", "{tiny_keras}", "--no-validate", "-o", "{t}/o.tflite"], 2, "No space left on device (ENOSPC)"),
    Case("disk-full-manifest-existing-output", both(copy_asset("tiny_tflite", "o.tflite", True),
         enospc(lambda p: p.name.endswith(".partial.json"))), ["convert", "{tiny_keras}", "--no-validate",
         "--quantize", "fp16", "-o", "{t}/o.tflite"], 2, "No space left on device (ENOSPC) on {t}/o.tflite.json"),
    Case("disk-full-artifact", enospc(lambda p: ".partial.tflite" in p.name),
         ["convert", "{tiny_keras}", "--no-validate", "-o", "{t}/o.tflite"], 2, "No space left on device (ENOSPC) on {t}/o.tflite"),
    Case("bad-model-existing-output", both(copy_asset("tiny_tflite", "o.tflite", True), w("m.keras", "junk")),
         ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2, "not a Keras archive"),
    # --- data -----------------------------------------------------------------------------------
    Case("data-missing", None, VAL + ["--data", "{t}/nope.npy"], 2, "does not exist"),
    Case("data-fifo", fifo("d.npy"), PROF + ["--data", "{t}/d.npy"], 2, "named pipe", process=True, timeout=60),
    Case("data-device", link("d.npy", "/dev/zero"), VAL + ["--data", "{t}/d.npy"], 2, "a device"),
    Case("data-wrong-extension", w("d.csv", "1,2"), VAL + ["--data", "{t}/d.csv"], 2, "is not a .npy file"),
    Case("data-empty-file", w("d.npy", b""), VAL + ["--data", "{t}/d.npy"], 2, "Cannot read"),
    Case("data-text-as-npy", w("d.npy", "1 2 3"), VAL + ["--data", "{t}/d.npy"], 2, "Cannot read"),
    Case("data-wrong-shape", npy("d.npy", np.zeros((4, 7), np.float32)), VAL + ["--data", "{t}/d.npy"], 2,
         "samples of shape (7,)"),
    Case("data-wrong-dtype", npy("d.npy", np.zeros((4, 8), np.int32)), VAL + ["--data", "{t}/d.npy"], 2, "as int32"),
    Case("data-strings", npy("d.npy", np.array([["a"] * 8])), VAL + ["--data", "{t}/d.npy"], 2, "<U1"),
    Case("data-nan", npy("d.npy", np.full((4, 8), np.nan, np.float32)), VAL + ["--data", "{t}/d.npy"], 2, "NaN"),
    Case("data-inf", npy("d.npy", np.full((4, 8), np.inf, np.float32)), VAL + ["--data", "{t}/d.npy"], 2, "infinite"),
    Case("data-object-array", npy("d.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True),
         VAL + ["--data", "{t}/d.npy"], 2, "Cannot read"),
    Case("data-empty-array", npy("d.npy", np.zeros((0, 8), np.float32)), VAL + ["--data", "{t}/d.npy"], 2, "no samples"),
    Case("data-scalar", npy("d.npy", np.float32(1.0)), VAL + ["--data", "{t}/d.npy"], 2, "single number"),
    Case("data-npz-missing-key", npz("d.npz", a=np.zeros((4, 8), np.float32), b=np.zeros((4, 8), np.float32)),
         VAL + ["--data", "{t}/d.npz"], 2, "has no array for input 'x'"),
    Case("data-npz-only-labels", npz("d.npz", labels=np.zeros(4)), VAL + ["--data", "{t}/d.npz"], 2,
         "has no array for input 'x'"),
    Case("data-npz-extra-key-is-a-warning", npz("d.npz", x=np.zeros((4, 8), np.float32), extra=np.zeros(3)),
         VAL + ["--data", "{t}/d.npz"], 0),
    Case("data-npz-member-not-an-array", zipped("d.npz", {"x.npy": "not an array"}), VAL + ["--data", "{t}/d.npz"], 2,
         "not a numpy array"),
    Case("data-npz-truncated", lambda x: (npz("full.npz", x=np.zeros((64, 8), np.float32))(x),
         x.write("d.npz", (x.t / "full.npz").read_bytes()[:300])), VAL + ["--data", "{t}/d.npz"], 2, "Cannot read"),
    Case("data-npz-empty", npz("d.npz"), VAL + ["--data", "{t}/d.npz"], 2, "holds no arrays"),
    Case("data-labels-mismatch", npz("d.npz", x=np.zeros((4, 8), np.float32), labels=np.zeros(3)),
         VAL + ["--data", "{t}/d.npz"], 2, "3 labels for 4 samples"),
    Case("weights-fifo", fifo("w.pt"), ["convert", str(Path(__file__).parents[1] / "converters" / "torch_nets.py")
         + ":OtherNet", "--weights", "{t}/w.pt", "-o", "{t}/o.pte", "--to", "executorch"], 2, "named pipe"),
    Case("model-truncated-keras-in-a-process", lambda x: x.cut("tiny_keras", "m.keras"),
         ["convert", "{t}/m.keras", "-o", "{t}/o.tflite"], 2, "truncated or corrupt", process=True, timeout=120),
    Case("data-image-folder-empty", lambda x: (x.t / "imgs").mkdir(), VAL + ["--data", "{t}/imgs"], 2, "holds no images"),
    Case("data-token-ids-out-of-range", None, ["convert", "{emb_pt2}", "--to", "executorch", "--data", "{ids_npy}",
         "-o", "{t}/o.pte"], 2, "integer inputs given are ids in [1, 50]"),
    Case("calibration-nan", npy("c.npy", np.full((4, 8), np.nan, np.float32)), CONV + ["--quantize", "int8",
         "--calibration", "{t}/c.npy"], 2, "NaN"),
    # --- validate: artifacts and thresholds -----------------------------------------------------
    Case("candidate-missing", None, ["validate", "{tiny_keras}", "{t}/nope.tflite"], 2, "does not exist"),
    Case("candidate-truncated-tflite", lambda x: x.cut("tiny_tflite", "c.tflite"), ["validate", "{tiny_keras}",
         "{t}/c.tflite"], 2, "not a valid .tflite file"),
    Case("candidate-empty-tflite", w("c.tflite", b""), ["validate", "{tiny_keras}", "{t}/c.tflite"], 2, "empty"),
    Case("candidate-text-pte", w("c.pte", "not a program"), ["validate", "{tiny_keras}", "{t}/c.pte"], 2,
         "not a valid .pte file"),
    Case("candidate-junk-onnx", w("c.onnx", b"\x08\x07garbage\xff\xff"), ["validate", "{tiny_keras}", "{t}/c.onnx"], 2,
         "not a valid .onnx file"),
    Case("candidate-junk-ptl", w("c.ptl", "not a zip"), ["validate", "{tiny_keras}", "{t}/c.ptl"], 2,
         "not a valid .ptl file"),
    Case("candidate-wrong-extension", w("c.bin", "x"), ["validate", "{tiny_keras}", "{t}/c.bin"], 2,
         "not an artifact edgekit can run"),
    Case("candidate-fifo", fifo("c.tflite"), ["validate", "{tiny_keras}", "{t}/c.tflite"], 2, "named pipe"),
    Case("threshold-nan", None, VAL + ["--min-psnr", "nan"], 2, "--min-psnr nan is not a usable threshold"),
    Case("threshold-share-above-one", None, VAL + ["--min-top1-agreement", "2"], 2, "between 0 and 1"),
    Case("threshold-negative-drop", None, VAL + ["--max-accuracy-drop", "-1"], 2, "between 0 and 1"),
    Case("threshold-cosine-above-one", None, VAL + ["--min-cosine", "5"], 2, "between -1 and 1"),
    Case("threshold-not-a-number", None, VAL + ["--min-psnr", "high"], 2, "Invalid value for '--min-psnr'"),
    Case("samples-zero", None, VAL + ["--samples", "0"], 2, "Invalid value for '--samples'"),
    Case("validate-json-error-object", None, ["validate", "{tiny_keras}", "{t}/nope.tflite", "--json"], 2,
         "does not exist"),
    # --- profile, targets -----------------------------------------------------------------------
    Case("runs-huge", None, PROF[:2] + ["--runs", "1000000000"], 2, "--runs 1,000,000,000 exceeds edgekit's limit of 10,000,000"),
    Case("warmup-huge", None, PROF[:2] + ["--warmup", "99999999"], 2, "exceeds edgekit's limit of 10,000"),
    Case("threads-huge", None, PROF[:2] + ["--threads", "100000"], 2, "exceeds edgekit's limit of 1,024"),
    Case("runs-zero", None, PROF[:2] + ["--runs", "0"], 2, "Invalid value for '--runs'"),
    Case("profile-truncated-tflite", lambda x: x.cut("tiny_tflite", "c.tflite"), ["profile", "{t}/c.tflite"], 2,
         "not a valid .tflite file"),
    Case("profile-missing", None, ["profile", "{t}/nope.tflite"], 2, "does not exist"),
    Case("target-unknown-scheme", None, PROF + ["--target", "ftp://x"], 2, "ftp://x"),
    Case("target-ssh-without-host", None, PROF + ["--target", "ssh://"], 2, "ssh://"),
    # --- inspect ----------------------------------------------------------------------------------
    Case("inspect-truncated-tflite", lambda x: x.cut("tiny_tflite", "c.tflite", 0.6), ["inspect", "{t}/c.tflite",
         "--edgetpu"], 2, "not a valid .tflite file"),
    Case("inspect-junk", w("c.tflite", "junk junk junk"), ["inspect", "{t}/c.tflite", "--edgetpu"], 2,
         "not a TFLite flatbuffer"),
    Case("inspect-missing", None, ["inspect", "{t}/nope.tflite", "--edgetpu"], 2, "does not exist"),
    Case("inspect-folder", lambda x: (x.t / "d.tflite").mkdir(), ["inspect", "{t}/d.tflite", "--edgetpu"], 2, "a folder"),
    Case("inspect-fifo", fifo("c.tflite"), ["inspect", "{t}/c.tflite", "--edgetpu"], 2, "named pipe"),
    Case("inspect-without-edgetpu", None, ["inspect", "{tiny_tflite}"], 2, "Say what to inspect"),
    # --- report -------------------------------------------------------------------------------------
    Case("report-dev-zero", link("report.json", "/dev/zero"), ["report", "{t}/report.json"], 2, "a device",
         process=True, timeout=30),
    Case("report-fifo", fifo("report.json"), ["report", "{t}/report.json"], 2, "named pipe"),
    Case("report-missing", None, ["report", "{t}/report.json"], 2, "does not exist"),
    Case("report-not-json", w("report.json", "{nope"), ["report", "{t}/report.json"], 2, "not valid JSON"),
    Case("report-binary", w("report.json", b"\xff\xfe\x00junk"), ["report", "{t}/report.json"], 2, "not valid JSON"),
    Case("report-deeply-nested", w("report.json", "[" * 100000 + "]" * 100000), ["report", "{t}/report.json"], 2,
         "nested too deeply"),
    Case("report-wrong-kind", report(lambda r: r.update(kind="convert")), ["report", "{t}/report.json"], 2,
         "not an edgekit run report"),
    Case("report-missing-top-key", report(lambda r: r.pop("targets")), ["report", "{t}/report.json"], 2,
         "missing targets"),
    Case("report-build-missing-keys", report(lambda r: r["builds"][0].pop("options")), ["report", "{t}/report.json"], 2,
         "build 1 lacks options"),
    Case("report-build-not-a-dict", report(lambda r: r["builds"].append(3)), ["report", "{t}/report.json"], 2,
         "build 2 lacks"),
    Case("report-too-big", sparse("report.json", (64 << 20) + 1), ["report", "{t}/report.json"], 2,
         "over edgekit's limit of 67,108,864"),
    Case("report-output-is-folder", both(lambda x: (x.t / "out.md").mkdir()), ["report", "{report_json}", "-o",
         "{t}/out.md"], 2, "is a folder"),
    Case("report-existing-output-kept", both(w("out.md", "old"), w("bad.json", "[]")), ["report", "{t}/bad.json",
         "-o", "{t}/out.md"], 2, "not an edgekit run report"),
    Case("unexpected-bug-is-one-paragraph", bug, ["report", "{report_json}"], 1,
         "edgekit hit an unexpected ZeroDivisionError: division by zero"),
    Case("report-renders", None, ["report", "{report_json}"], 0),
    # --- run: the pipeline file -------------------------------------------------------------------
    Case("pipeline-missing", None, ["run", "{t}/edgekit.yaml"], 2, "does not exist"),
    Case("pipeline-alias-loop", pipeline("a: &a [*a]\n" + PIPE), ["run", "{t}/edgekit.yaml"], 2,
         "an alias refers to the node that contains it"),
    Case("pipeline-billion-laughs", pipeline(LAUGHS), ["run", "{t}/edgekit.yaml"], 2, "aliases expand to over 100,000",
         process=True, timeout=30),
    Case("pipeline-matrix-40-to-the-5", pipeline(MATRIX), ["run", "{t}/edgekit.yaml"], 2,
         "expands to 102,400,000 builds; edgekit's limit is 256"),
    Case("pipeline-too-many-builds", pipeline("model: m.keras\nbuilds:\n" + "".join(f"  - {{name: b{i}}}\n" for i in range(300))),
         ["run", "{t}/edgekit.yaml"], 2, "lists 300 builds"),
    Case("pipeline-matrix-empty-list", pipeline("model: m.keras\nbuilds: {matrix: {to: []}}\n"), ["run", "{t}/edgekit.yaml"],
         2, "expands to no build"),
    Case("pipeline-not-a-mapping", pipeline("- a\n- b\n"), ["run", "{t}/edgekit.yaml"], 2, "must be a mapping"),
    Case("pipeline-bad-yaml", pipeline("model: [unclosed\n"), ["run", "{t}/edgekit.yaml"], 2, "not valid YAML"),
    Case("pipeline-not-utf8", both(copy_asset("tiny_keras", "m.keras"), w("edgekit.yaml", b"model: m.keras\n# \xff\xfe\n")),
         ["run", "{t}/edgekit.yaml"], 2, "codec can't decode"),
    Case("pipeline-no-model", pipeline("builds: [{name: a}]\n"), ["run", "{t}/edgekit.yaml"], 2, "no `model:` key"),
    Case("pipeline-model-not-string", pipeline("model: [1]\nbuilds: [{name: a}]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "must be a non-empty string"),
    Case("pipeline-unknown-key", pipeline(PIPE + "buidls: []\n"), ["run", "{t}/edgekit.yaml"], 2, "unknown key 'buidls'"),
    Case("pipeline-no-builds", pipeline("model: m.keras\n"), ["run", "{t}/edgekit.yaml"], 2, "no `builds:`"),
    Case("pipeline-builds-empty", pipeline("model: m.keras\nbuilds: []\n"), ["run", "{t}/edgekit.yaml"], 2,
         "must be a non-empty list"),
    Case("pipeline-build-not-mapping", pipeline("model: m.keras\nbuilds: [3]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "each build is a mapping"),
    Case("pipeline-build-unknown-key", pipeline("model: m.keras\nbuilds: [{nmae: a}]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "unknown key 'nmae'"),
    Case("pipeline-bad-to", pipeline("model: m.keras\nbuilds: [{to: coreml}]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "unknown target format 'coreml'"),
    Case("pipeline-bad-quantize", pipeline("model: m.keras\nbuilds: [{quantize: int3}]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "unknown quantization 'int3'"),
    Case("pipeline-bad-name", pipeline("model: m.keras\nbuilds: [{name: 'a/b'}]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "not a usable name"),
    Case("pipeline-duplicate-names", pipeline("model: m.keras\nbuilds: [{name: a}, {name: a}]\n"),
         ["run", "{t}/edgekit.yaml"], 2, "must be unique"),
    Case("pipeline-bad-flag", pipeline("model: m.keras\nbuilds: [{allow_tf_ops: maybe}]\n"), ["run", "{t}/edgekit.yaml"],
         2, "must be true or false"),
    Case("pipeline-bad-target", pipeline(PIPE + "targets: [ftp://x]\n"), ["run", "{t}/edgekit.yaml"], 2,
         "unknown target 'ftp://x'"),
    Case("pipeline-targets-not-list", pipeline(PIPE + "targets: host\n"), ["run", "{t}/edgekit.yaml"], 2,
         "must be a list of target strings"),
    Case("pipeline-bad-budget", pipeline(PIPE + "budgets: {size_gb: 1}\n"), ["run", "{t}/edgekit.yaml"], 2,
         "unknown key 'size_gb'"),
    Case("pipeline-budget-not-number", pipeline(PIPE + "budgets: {size_mb: big}\n"), ["run", "{t}/edgekit.yaml"], 2,
         "must be a number"),
    Case("pipeline-budget-unknown-target", pipeline(PIPE + "budgets: {latency_p90_ms: {pi: 3}}\n"),
         ["run", "{t}/edgekit.yaml"], 2, "not in targets"),
    Case("pipeline-runs-huge", pipeline(PIPE + "runs: 1000000000\n"), ["run", "{t}/edgekit.yaml"], 2,
         "exceeds edgekit's limit of 10,000,000"),
    Case("pipeline-runs-negative", pipeline(PIPE + "runs: -1\n"), ["run", "{t}/edgekit.yaml"], 2,
         "must be a positive whole number"),
    Case("pipeline-bad-shape", pipeline(PIPE + "input_shapes: {x: 1xq}\n"), ["run", "{t}/edgekit.yaml"], 2,
         "Cannot parse the shape"),
    Case("pipeline-huge-shape", pipeline(PIPE + "input_shapes: {x: 1x3x100000x100000}\n"), ["run", "{t}/edgekit.yaml"], 2,
         "over edgekit's limit"),
    Case("pipeline-fifo", fifo("edgekit.yaml"), ["run", "{t}/edgekit.yaml"], 2, "named pipe"),
    Case("pipeline-too-big", sparse("edgekit.yaml", (1 << 20) + 1), ["run", "{t}/edgekit.yaml"], 2,
         "over edgekit's limit of 1,048,576"),
    # --- the command line -------------------------------------------------------------------------
    Case("unknown-command", None, ["frobnicate"], 2, "No such command"),
    Case("unknown-option", None, ["convert", "{tiny_keras}", "--frobnicate"], 2, "No such option"),
    Case("missing-argument", None, ["validate", "{tiny_keras}"], 2, "Missing argument"),
]
