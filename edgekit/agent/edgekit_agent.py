#!/usr/bin/env python3
"""edgekit's device agent: load an artifact, time it, print one JSON result.

Self-contained on purpose: it is copied to a board (SSH, an emulated arm64 root filesystem) and
run there with the board's own Python, so it needs only the standard library, numpy and the
runtime the board has (ai-edge-litert, tflite-runtime with numpy<2, executorch, torch lite,
onnxruntime). On the host, edgekit runs this same file in a fresh subprocess, and
`edgekit.profiling` imports its statistics from here: one copy of the measurement code.

    python3 edgekit_agent.py probe
    python3 edgekit_agent.py profile MODEL [--runs N] [--warmup N] [--threads N] [--inputs X.npz] [--ops]
    python3 edgekit_agent.py run MODEL --inputs X.npz --outputs Y.npz [--threads N]

The result is printed on stdout as one line `EDGEKIT-RESULT {json}` (runtimes may print their
own chatter). Exit codes: 0 ok, 2 bad input, 3 a runtime or numpy missing, 1 anything else.
With --cleanup DIR the agent removes DIR when it is signalled or, with --watch-stdin, when its
controlling connection drops (stdin reaching EOF): nothing is left behind on a board even when
the host cannot come back to clean up. After a normal exit the host fetches what it needs and
removes DIR itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time

AGENT_VERSION = 1
SCHEMA_VERSION = 1
RESULT_PREFIX = "EDGEKIT-RESULT "
FORMATS = {".tflite": "tflite", ".pte": "executorch", ".ptl": "torchscript", ".onnx": "onnx"}
# what to install on a board that lacks the runtime for a format (aarch64/x86_64 wheels exist)
INSTALL = {
    "numpy": "numpy",
    "tflite": "ai-edge-litert",
    "executorch": "executorch",
    "torchscript": "torch",
    "onnx": "onnxruntime",
}
RUNTIME_PACKAGES = ("numpy", "ai-edge-litert", "tflite-runtime", "executorch", "torch", "onnxruntime")


class AgentError(Exception):
    code = 1
    kind = "failed"

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message, self.hint = message, hint


class Missing(AgentError):
    code = 3
    kind = "missing_dependency"


class Bad(AgentError):
    code = 2
    kind = "bad_input"


class MissingLibrary(AgentError):  # an external delegate's shared library is not installed
    code = 3
    kind = "missing_library"


class NoDevice(AgentError):  # the delegate loaded but found no accelerator (Coral: none plugged in)
    code = 4
    kind = "device_unavailable"


# --delegate LIB [--delegate-option K=V ...]: an external TFLite delegate (libedgetpu.so.1 for Coral)
EXTERNAL_DELEGATE = {"library": None, "options": {}}


def _load_external_delegate(interp_module):
    lib, opts = EXTERNAL_DELEGATE["library"], EXTERNAL_DELEGATE["options"]
    try:
        return interp_module.load_delegate(lib, opts or None)
    except OSError as exc:  # dlopen failed: the library is not installed (not the documented ValueError)
        raise MissingLibrary(f"The delegate library {lib} cannot be loaded: {exc}",
                             "Coral: install the Edge TPU runtime (apt-get install libedgetpu1-std from Coral's apt "
                             "repository, https://coral.ai/software/#edgetpu-runtime), or point edgekit at the "
                             "library (EDGEKIT_EDGETPU_LIB=/path/libedgetpu.so.1).") from exc
    except ValueError as exc:  # loaded, but the delegate refused: no device answered
        raise NoDevice(f"The delegate {os.path.basename(lib)} found no device: {str(exc).strip()}",
                       "Coral: plug the USB Accelerator in (a USB 3 port), check `lsusb` for 18d1:9302 / 1a6e:089a "
                       "and the udev rules, or `ls /dev/apex_0` for PCIe; options: " + json.dumps(opts)) from exc


# -- statistics (edgekit.profiling imports these) ------------------------------------------

def percentile(sorted_values, q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of an already sorted sequence."""
    n = len(sorted_values)
    if n == 0:
        return float("nan")
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def latency_stats(samples_ms) -> dict:
    """min, p50, p90, p99, mean, std (population), max of latencies in milliseconds."""
    xs = sorted(float(x) for x in samples_ms)
    if not xs:
        raise ValueError("no latency samples")
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    return {"min": xs[0], "p50": percentile(xs, 50), "p90": percentile(xs, 90), "p99": percentile(xs, 99),
            "mean": mean, "std": std, "max": xs[-1]}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far.

    Linux: VmHWM from /proc/self/status, the high-water mark of this program's own memory.
    Not ru_maxrss there: it survives fork+exec, so a child of a 1.5 GB parent (pytest, an IDE)
    would report the parent's size. Elsewhere ru_maxrss (KiB; bytes on macOS)."""
    m = re.search(r"^VmHWM:\s+(\d+) kB", _read("/proc/self/status") or "", re.M)
    if m:
        return int(m.group(1)) / 1024
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


# -- device ---------------------------------------------------------------------------------

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def _pkg_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def device_info() -> dict:
    cpu = None
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
        if m:
            cpu = m.group(1).strip()
            break
    os_name = None
    rel = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', rel, re.M)
    if m:
        os_name = m.group(1)
    board = _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model")
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    info = {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu or platform.processor() or None,
        "board": board,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": os_name or platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "runtimes": {p: v for p in RUNTIME_PACKAGES if (v := _pkg_version(p))},
    }
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "", re.M)
    if mem:
        info["memory_mb"] = round(int(mem.group(1)) / 1024)
    return info


# -- native stderr capture (XNNPACK and ExecuTorch log through fd 2) ------------------------

@contextlib.contextmanager
def capture_fd2():
    """Redirect file descriptor 2 into a temporary file for the block; yields a dict whose
    'text' holds what native code wrote."""
    out = {"text": ""}
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield out
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out["text"] = tmp.read().decode("utf-8", "replace")


# -- runtimes --------------------------------------------------------------------------------

def _numpy():
    try:
        import numpy as np
    except ImportError as exc:
        raise Missing(f"numpy is not installed for {sys.executable} ({exc}).",
                      f"{sys.executable} -m pip install numpy") from exc
    return np


def _install_hint(fmt):
    return f"{sys.executable} -m pip install {INSTALL[fmt]}"


class Spec:
    def __init__(self, name, shape, dtype, scale=None, zero_point=None):
        self.name, self.shape, self.dtype, self.scale, self.zero_point = name, tuple(shape), dtype, scale, zero_point

    def to_dict(self):
        d = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.scale is not None:
            d.update(scale=self.scale, zero_point=self.zero_point)
        return d


class TFLiteModel:
    """ai-edge-litert's Interpreter, else tflite-runtime's (same API)."""

    def __init__(self, path, threads):
        np = _numpy()
        errors = []
        Interpreter = None
        for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
            try:
                interp_module = __import__(mod, fromlist=["Interpreter"])
                Interpreter = interp_module.Interpreter
                self.runtime = mod.split(".")[0]
                break
            except ImportError as exc:  # tflite-runtime under numpy 2 fails here or at first use
                errors.append(f"{mod}: {exc}")
        if Interpreter is None:
            raise Missing("No TFLite runtime (ai-edge-litert or tflite-runtime) is installed for "
                          f"{sys.executable}: " + "; ".join(errors), _install_hint("tflite"))
        self.external = None
        with capture_fd2() as log:
            if EXTERNAL_DELEGATE["library"]:
                self.external = _load_external_delegate(interp_module)
            try:
                kw = {}
                if self.external is not None and hasattr(interp_module, "OpResolverType"):
                    # only the external delegate: its node count is not mixed with XNNPACK's
                    kw["experimental_op_resolver_type"] = interp_module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                self.interp = Interpreter(model_path=str(path), num_threads=threads,
                                          experimental_delegates=[self.external] if self.external else None, **kw)
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise AgentError(f"{self.runtime} cannot load {os.path.basename(path)}: {exc}") from exc
        self.native_log = log["text"]
        self._in = self.interp.get_input_details()
        self._out = self.interp.get_output_details()
        names = self._signature_names()
        self.inputs = [self._spec(d, names[0].get(d["index"])) for d in self._in]
        self.outputs = [self._spec(d, names[1].get(d["index"])) for d in self._out]
        self._np = np

    def _signature_names(self):
        """Tensor index → signature name, so inputs/outputs keep the names edgekit reports."""
        try:
            sigs = self.interp.get_signature_list()
            if len(sigs) != 1:
                return {}, {}
            r = self.interp.get_signature_runner(next(iter(sigs)))
            ins = {d["index"]: n for n, d in r.get_input_details().items()}
            outs = {d["index"]: n for n, d in r.get_output_details().items()}
            return ins, outs
        except Exception:
            return {}, {}

    @staticmethod
    def _spec(d, name):
        import numpy as np

        scale, zp = d.get("quantization", (0.0, 0))
        q = scale not in (0, 0.0) and np.dtype(d["dtype"]).kind in "iu"
        return Spec(name or d["name"], [int(x) for x in d["shape"]], np.dtype(d["dtype"]).name,
                    float(scale) if q else None, int(zp) if q else None)

    def set_inputs(self, feeds):
        for d, s in zip(self._in, self.inputs):
            self.interp.set_tensor(d["index"], feeds[s.name])

    def invoke(self):
        self.interp.invoke()

    def get_outputs(self):
        return {s.name: self._np.array(self.interp.get_tensor(d["index"])) for d, s in zip(self._out, self.outputs)}

    def delegation(self):
        """XNNPACK coverage: nodes inside each DELEGATE partition vs all nodes of the graph.

        Read from the graph (each delegate node replaces the nodes between its inputs and
        outputs), and cross-checked with the runtime's own "Replacing N out of M node(s)" line
        when it printed one."""
        try:
            ops = self.interp._get_ops_details()
        except Exception:
            return None
        delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
        nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
        producer = {}
        for o in nodes:
            for t in o["outputs"]:
                producer[int(t)] = o
        replaced = set()
        for d in delegates:
            stop = {int(t) for t in d["inputs"]}
            todo = [int(t) for t in d["outputs"]]
            seen = set()
            while todo:
                t = todo.pop()
                if t in seen or t in stop:
                    continue
                seen.add(t)
                o = producer.get(t)
                if o is None or o["index"] in replaced:
                    continue
                replaced.add(o["index"])
                todo.extend(int(x) for x in o["inputs"] if x >= 0)
        fallback = [o for o in nodes if o["index"] not in replaced]
        by_op = {}
        for o in fallback:
            by_op[o["op_name"]] = by_op.get(o["op_name"], 0) + 1
        result = {
            "backend": os.path.basename(EXTERNAL_DELEGATE["library"]) if self.external else "XNNPACK",
            "delegated_ops": len(replaced),
            "total_ops": len(nodes),
            "partitions": len(delegates),
            "not_delegated": sorted(by_op),
            "not_delegated_counts": by_op,
            "xnnpack_active": bool(delegates) or "XNNPACK" in self.native_log,
        }
        m = re.findall(r"Replacing (\d+) out of (\d+) node\(s\)", self.native_log)
        if m:
            result["runtime_log"] = {"replaced": sum(int(a) for a, _ in m), "total": int(m[0][1])}
        return result


class ExecuTorchModel:
    def __init__(self, path, threads, etdump=False):
        np = _numpy()
        try:
            from executorch.runtime import Runtime
            import torch
        except ImportError as exc:
            raise Missing(f"ExecuTorch is not installed for {sys.executable} ({exc}).",
                          _install_hint("executorch")) from exc
        self.runtime = "executorch"
        self._np, self._torch = np, torch
        if threads:
            with contextlib.suppress(Exception):
                from executorch.extension.pybindings import portable_lib

                if portable_lib._threadpool_get_thread_count() != threads:
                    portable_lib._unsafe_reset_threadpool(int(threads))
        with capture_fd2() as log:
            try:
                self.program = Runtime.get().load_program(str(path), enable_etdump=etdump,
                                                          debug_buffer_size=0)
                names = sorted(self.program.method_names)
                self.method_name = "forward" if "forward" in names else names[0]
                self.method = self.program.load_method(self.method_name)
            except Exception as exc:
                err = exc
            else:
                err = None
        self.native_log = log["text"]
        if err is not None:
            missing = sorted(set(re.findall(r"Missing operator: \[\d+\] ([\w:.]+)", self.native_log)))
            detail = f" (no kernel for {', '.join(missing)})" if missing else ""
            raise AgentError(f"executorch cannot load {os.path.basename(path)}{detail}: {err}",
                             " | ".join(self.native_log.strip().splitlines()[-3:]) or None)
        meta = self.method.metadata
        types = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                 7: "float64", 11: "bool"}
        self.inputs, self.outputs = [], []
        for i in range(meta.num_inputs()):
            t = meta.input_tensor_meta(i)
            self.inputs.append(Spec(f"input_{i}", [int(d) for d in t.sizes()], types.get(int(t.dtype()), "float32")))
        for i in range(meta.num_outputs()):
            t = meta.output_tensor_meta(i)
            self.outputs.append(Spec(f"output_{i}", [int(d) for d in t.sizes()], types.get(int(t.dtype()), "float32")))
        self._args = None
        self._last = None

    def set_inputs(self, feeds):
        self._args = [self._torch.from_numpy(self._np.ascontiguousarray(feeds[s.name])) for s in self.inputs]

    def invoke(self):
        self._last = self.method.execute(self._args)

    def get_outputs(self):
        return {s.name: o.numpy().copy() for s, o in zip(self.outputs, self._last)}

    def delegation(self):
        return None  # from the program's ETDump events (ops) or the artifact's manifest, host side


PTL_IO_FILE = "edgekit_io.json"


def ptl_io(path):
    """The I/O specs edgekit's converter keeps inside a .ptl archive (extra/edgekit_io.json), or
    None: the lite interpreter does not expose them."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(f"extra/{PTL_IO_FILE}"):
                    return json.loads(z.read(name))
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return None


class TorchScriptModel:
    def __init__(self, path, threads):
        np = _numpy()
        try:
            import torch
        except ImportError as exc:
            raise Missing(f"torch is not installed for {sys.executable} ({exc}).", _install_hint("torchscript")) from exc
        self.runtime = "torch"
        if threads:
            torch.set_num_threads(int(threads))
        self._np, self._torch = np, torch
        from torch.jit.mobile import _load_for_lite_interpreter

        self.module = _load_for_lite_interpreter(str(path))
        io = ptl_io(path) or {}
        if not io.get("inputs"):
            raise Bad(f"{os.path.basename(path)} does not say what its inputs are: the lite interpreter cannot "
                      "tell, and the file has no edgekit I/O record. Convert it with edgekit convert --to torchscript.")
        self.inputs = [Spec(d["name"], d["shape"], d["dtype"]) for d in io["inputs"]]
        self.outputs = [Spec(d["name"], d["shape"], d["dtype"]) for d in io.get("outputs", [])]
        self.native_log = ""

    def set_inputs(self, feeds):
        self._args = [self._torch.from_numpy(self._np.ascontiguousarray(feeds[s.name])) for s in self.inputs]

    def invoke(self):
        with self._torch.no_grad():
            out = self.module(*self._args)
        self._last = out if isinstance(out, (tuple, list)) else [out]

    def get_outputs(self):
        names = [s.name for s in self.outputs] or [f"output_{i}" for i in range(len(self._last))]
        return {n: o.numpy().copy() for n, o in zip(names, self._last)}

    def delegation(self):
        return None


class OnnxModel:
    def __init__(self, path, threads, profile=False):
        np = _numpy()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise Missing(f"onnxruntime is not installed for {sys.executable} ({exc}).", _install_hint("onnx")) from exc
        self.runtime = "onnxruntime"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), "edgekit-ort-profile")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        dt = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
              "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool", "tensor(double)": "float64"}
        self.inputs = [Spec(i.name, [d if isinstance(d, int) else 1 for d in i.shape], dt.get(i.type, "float32"))
                       for i in self.session.get_inputs()]
        self.outputs = [Spec(o.name, [d if isinstance(d, int) else 1 for d in o.shape], dt.get(o.type, "float32"))
                        for o in self.session.get_outputs()]
        self.native_log, self._np = "", np

    def set_inputs(self, feeds):
        self._feeds = feeds

    def invoke(self):
        self._last = self.session.run(None, self._feeds)

    def get_outputs(self):
        return {s.name: np_ for s, np_ in zip(self.outputs, self._last)}

    def delegation(self):
        return None

    def op_profile(self):
        path = self.session.end_profiling()
        try:
            with open(path) as f:
                events = json.load(f)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
        per = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                args = e.get("args", {})
                key = (e["name"][: -len("_kernel_time")], args.get("op_name", "?"))
                per.setdefault(key, []).append(e.get("dur", 0) / 1000.0)
        return _ops_table([(n, t, xs) for (n, t), xs in per.items()])


RUNTIME_MODULES = {
    "tflite": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
    "executorch": ("executorch.runtime",),
    "torchscript": ("torch",),
    "onnx": ("onnxruntime",),
}


def preload_runtime(fmt):
    """Import the runtime for FMT ahead of the timed load, so init_ms is the model's load time,
    not Python's import time (reported apart as import_ms). Silent when missing: the load says so."""
    for mod in RUNTIME_MODULES.get(fmt, ()):
        try:
            with capture_fd2():
                __import__(mod)
            return
        except Exception:
            continue


def format_of(path):
    return FORMATS.get(os.path.splitext(path)[1].lower())


def open_model(path, threads, **kw):
    ext = os.path.splitext(path)[1].lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise Bad(f"{path} is not an artifact the agent can run (by its extension).",
                  "Artifacts are .tflite, .pte, .ptl or .onnx files.")
    if not os.path.isfile(path):
        raise Bad(f"The artifact {path} does not exist.")
    cls = {"tflite": TFLiteModel, "executorch": ExecuTorchModel, "torchscript": TorchScriptModel,
           "onnx": OnnxModel}[fmt]
    return fmt, cls(path, threads, **kw)


# -- inputs ----------------------------------------------------------------------------------

def _quantize(np, x, spec):
    dt = np.dtype(spec.dtype)
    x = np.asarray(x)
    if spec.scale is not None and x.dtype.kind == "f" and dt.kind in "iu":
        info = np.iinfo(dt)
        q = np.round(x.astype(np.float64) / spec.scale) + spec.zero_point
        return np.clip(q, info.min, info.max).astype(dt)
    return x.astype(dt, copy=False)


def _dequantize(np, x, spec):
    if spec.scale is None:
        return np.asarray(x)
    return ((np.asarray(x, np.float64) - spec.zero_point) * spec.scale).astype(np.float32)


def random_feeds(np, specs, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for s in specs:
        dt = np.dtype(s.dtype)
        if dt.kind == "f":
            feeds[s.name] = rng.standard_normal(s.shape).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            feeds[s.name] = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=s.shape).astype(dt)
        else:
            feeds[s.name] = rng.integers(0, 2, size=s.shape).astype(dt)
    return feeds


def load_feeds(np, path, specs):
    """Samples from an .npz written by edgekit: arrays shaped (N, *input shape[1:]) keyed by the
    input name (else matched by position). Returns a list of per-sample feeds (batch axis 1)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    names = [k for k in arrays if k != "labels"]
    if len(names) != len(specs):
        raise Bad(f"The inputs file has {len(names)} array(s) ({', '.join(names)}); the model takes "
                  f"{len(specs)} ({', '.join(s.name for s in specs)}).")
    by_spec = {}
    for i, s in enumerate(specs):
        by_spec[s.name] = arrays[s.name] if s.name in arrays else arrays[names[i]]
    n = min(len(a) for a in by_spec.values())
    feeds = []
    for j in range(n):
        feed = {}
        for s in specs:
            x = by_spec[s.name][j : j + 1]
            if x.size != int(np.prod(s.shape)):
                raise Bad(f"Input {s.name!r}: a sample has {x.size} values, the model takes shape {list(s.shape)}.")
            feed[s.name] = _quantize(np, x.reshape(s.shape), s)
        feeds.append(feed)
    if not feeds:
        raise Bad("The inputs file holds no samples.")
    return feeds


# -- ExecuTorch per-operator times (ETDump + devtools Inspector) --------------------------------

def _ops_table(rows, top=15):
    """rows: (name, op type, [ms per run]) → top operators by mean time, and totals by type."""
    per_op = []
    by_type = {}
    envelope = {}
    for name, op_type, xs in rows:
        xs = sorted(xs)
        mean = sum(xs) / len(xs)
        if op_type == "DELEGATE_CALL":  # the whole delegated subgraph; its kernels are listed too
            envelope["count"] = envelope.get("count", 0) + 1
            envelope["total_ms"] = envelope.get("total_ms", 0.0) + mean
            continue
        per_op.append({"name": name, "type": op_type, "mean_ms": mean, "p50_ms": percentile(xs, 50),
                       "p90_ms": percentile(xs, 90), "calls": len(xs)})
        t = by_type.setdefault(op_type, {"type": op_type, "total_ms": 0.0, "count": 0})
        t["total_ms"] += mean
        t["count"] += 1
    per_op.sort(key=lambda r: -r["mean_ms"])
    types = sorted(by_type.values(), key=lambda r: -r["total_ms"])
    total = sum(t["total_ms"] for t in types) or 1.0
    for t in types:
        t["share"] = t["total_ms"] / total
    out = {"top": per_op[:top], "by_type": types, "operators": len(per_op)}
    if envelope:
        out["delegate_calls"] = envelope
    return out


def executorch_ops(path, threads, feeds, runs):
    """Per-operator times from an ETDump of `runs` extra runs (a separate, instrumented load:
    the timed runs above are not slowed by the event tracer)."""
    try:
        from executorch.devtools import Inspector
    except Exception as exc:  # devtools need pandas & co; a board may only have the runtime
        return None, f"per-operator times need executorch.devtools ({exc.__class__.__name__}: {exc})"
    m = ExecuTorchModel(path, threads, etdump=True)
    m.set_inputs(feeds[0])
    for i in range(runs):
        m.set_inputs(feeds[i % len(feeds)])
        m.invoke()
    fd, etdump = tempfile.mkstemp(suffix=".etdp", prefix="edgekit-")
    os.close(fd)
    try:
        m.program.write_etdump_result_to_file(etdump, etdump + ".debug")
        with capture_fd2():
            inspector = Inspector(etdump_path=etdump)
        rows = []
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue
            for ev in block.events:
                if not ev.perf_data or ev.name in ("Method::execute", "Program::load_method", "Method::init"):
                    continue
                xs = list(ev.perf_data.raw)
                if ev.name == "DELEGATE_CALL":
                    op_type = "DELEGATE_CALL"
                elif ev.is_delegated_op or ev.delegate_backend_name:
                    op_type = re.sub(r"\s*#\d+$", "", ev.name).strip()
                    op_type = f"{ev.delegate_backend_name or 'XNNPACK'}:{op_type}"
                else:
                    op_type = ev.name.replace("native_call_", "")
                rows.append((ev.name, op_type, xs))
        if not rows:
            return None, "the ETDump held no operator events"
        return _ops_table(rows), None
    except Exception as exc:
        return None, f"could not read the ETDump ({exc.__class__.__name__}: {exc})"
    finally:
        for f in (etdump, etdump + ".debug"):
            with contextlib.suppress(OSError):
                os.remove(f)


def executorch_delegation(ops):
    """Delegated vs portable operators from ETDump events (when the program was profiled)."""
    if not ops:
        return None
    portable = {t["type"]: t["count"] for t in ops["by_type"] if ":" not in t["type"] and t["type"] != "DELEGATE_CALL"}
    delegated = sum(t["count"] for t in ops["by_type"] if ":" in t["type"])
    delegate_calls = ops.get("delegate_calls", {}).get("count", 0)
    return {"backend": "XNNPACK", "delegate_calls": delegate_calls, "delegated_kernels": delegated,
            "portable_ops": sum(portable.values()), "not_delegated": sorted(portable),
            "not_delegated_counts": portable, "source": "etdump"}


# -- commands ---------------------------------------------------------------------------------

def cmd_probe(args):
    out = {"agent_version": AGENT_VERSION, "python": sys.executable, "device": device_info(), "formats": {}}
    checks = {
        "tflite": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
        "executorch": ("executorch.runtime",),
        "torchscript": ("torch",),
        "onnx": ("onnxruntime",),
    }
    try:
        import numpy  # noqa: F401

        out["numpy"] = numpy.__version__
    except ImportError as exc:
        out["numpy"] = None
        out["numpy_error"] = str(exc)
    import importlib.util

    for fmt, mods in checks.items():
        ok, errs = None, []
        for mod in mods:
            try:
                if fmt != "tflite":  # torch-based runtimes take seconds (a minute emulated) to import: look, don't load
                    if importlib.util.find_spec(mod) is None:
                        raise ImportError(f"No module named {mod!r}")
                    ok = mod.split(".")[0]
                    break
                with capture_fd2():
                    __import__(mod)
                if mod.startswith("tflite_runtime"):  # built for numpy 1: fails on first use under numpy 2
                    import numpy

                    if int(numpy.__version__.split(".")[0]) >= 2:
                        errs.append(f"{mod}: built for numpy<2, numpy {numpy.__version__} installed")
                        continue
                ok = mod.split(".")[0]
                break
            except Exception as exc:
                errs.append(f"{mod}: {exc.__class__.__name__}: {exc}")
        out["formats"][fmt] = {"available": ok is not None, "module": ok, "errors": errs,
                               "install": None if ok else _install_hint(fmt)}
    return out


def cmd_profile(args):
    np = _numpy()
    threads = args.threads or (os.cpu_count() or 1)
    t0 = time.perf_counter()
    preload_runtime(format_of(args.model))
    import_ms = (time.perf_counter() - t0) * 1000.0
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    fmt, model = open_model(args.model, threads)
    init_ms = (time.perf_counter() - t0) * 1000.0
    feeds = load_feeds(np, args.inputs, model.inputs) if args.inputs else [random_feeds(np, model.inputs)]
    model.set_inputs(feeds[0])
    t = time.perf_counter()
    model.invoke()
    first_ms = (time.perf_counter() - t) * 1000.0
    model.get_outputs()
    for i in range(args.warmup):
        model.set_inputs(feeds[i % len(feeds)])
        model.invoke()
    times = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i in range(args.runs):
        model.set_inputs(feeds[i % len(feeds)])
        a = clock()
        model.invoke()
        times.append((clock() - a) / 1e6)
    wall = time.perf_counter() - started
    peak = peak_rss_mb()
    result = {
        "format": fmt,
        "runtime": model.runtime,
        "runtime_version": _pkg_version({"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}
                                        .get(model.runtime, model.runtime)),
        "latency_ms": latency_stats(times),
        "samples_ms": times,
        "init_ms": init_ms,
        "import_ms": import_ms,
        "first_inference_ms": first_ms,
        "peak_rss_mb": peak,
        "baseline_rss_mb": rss0,
        "size_bytes": os.path.getsize(args.model),
        "threads": threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "timed_wall_s": wall,
        "inputs": [s.to_dict() for s in model.inputs],
        "input_source": "data" if args.inputs else "random",
        "delegation": model.delegation(),
        "ops": None,
        "notes": [],
        "device": device_info(),
    }
    if args.ops and fmt == "executorch":
        del model
        ops, why = executorch_ops(args.model, threads, feeds, max(1, min(args.runs, 20)))
        result["ops"] = ops
        result["delegation"] = executorch_delegation(ops)
        if why:
            result["notes"].append("No per-operator times: " + why)
    elif args.ops and fmt == "onnx":
        m2 = OnnxModel(args.model, threads, profile=True)
        for i in range(max(1, min(args.runs, 20))):
            m2.set_inputs(feeds[i % len(feeds)])
            m2.invoke()
        result["ops"] = m2.op_profile()
    return result


def cmd_run(args):
    """Run every sample of --inputs and write the outputs (real values) to --outputs: the
    device half of on-device parity."""
    np = _numpy()
    fmt, model = open_model(args.model, args.threads or (os.cpu_count() or 1))
    feeds = load_feeds(np, args.inputs, model.inputs)
    outs = {}
    for feed in feeds:
        model.set_inputs(feed)
        model.invoke()
        for name, v in model.get_outputs().items():
            outs.setdefault(name, []).append(np.asarray(v))  # raw: the host dequantizes, as for local runs
    np.savez(args.outputs, **{k: np.concatenate(v) for k, v in outs.items()})
    return {"format": fmt, "runtime": model.runtime, "samples": len(feeds),
            "inputs": [s.to_dict() for s in model.inputs], "outputs": [s.to_dict() for s in model.outputs],
            "device": device_info()}


# -- cleanup when the controller goes away ------------------------------------------------------

def _arm_cleanup(folder, watch_stdin):
    done = threading.Event()
    lock = threading.RLock()

    def cleanup(*_):
        # a lock, not only the flag: a signal arriving while the stdin watcher is removing the
        # folder must wait for it, or its os._exit cuts the removal short
        with lock:
            if not done.is_set():
                shutil.rmtree(folder, ignore_errors=True)
                done.set()

    def die(signum, _frame):
        cleanup()
        os._exit(128 + signum)

    # Not at a normal exit: the caller fetches outputs, then removes the folder itself.
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGINT):
        with contextlib.suppress(Exception):
            signal.signal(sig, die)
    if watch_stdin:
        def watch():
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            cleanup()  # the connection dropped: nobody will read the result
            os._exit(130)

        threading.Thread(target=watch, daemon=True).start()
    return cleanup


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgekit_agent", description=__doc__.split("\n\n")[0])
    p.add_argument("--cleanup", metavar="DIR", help="Remove DIR when killed or signalled (and when stdin closes, with --watch-stdin).")
    p.add_argument("--watch-stdin", action="store_true", help="Exit (and clean up) when stdin reaches EOF.")
    p.add_argument("--remove-when-done", action="store_true",
                   help="Also remove the --cleanup DIR after a normal exit (nothing left to fetch: saves a round trip).")
    p.add_argument("--delegate", metavar="LIB", help="Load this external TFLite delegate (e.g. libedgetpu.so.1).")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                   help="An option for --delegate (repeatable), e.g. device=usb.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    pr = sub.add_parser("profile")
    pr.add_argument("model")
    pr.add_argument("--runs", type=int, default=50)
    pr.add_argument("--warmup", type=int, default=5)
    pr.add_argument("--threads", type=int)
    pr.add_argument("--inputs")
    pr.add_argument("--ops", action="store_true", help="Per-operator times where the runtime gives them.")
    ru = sub.add_parser("run")
    ru.add_argument("model")
    ru.add_argument("--inputs", required=True)
    ru.add_argument("--outputs", required=True)
    ru.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    if args.cleanup:
        _arm_cleanup(args.cleanup, args.watch_stdin)
    if args.delegate:
        EXTERNAL_DELEGATE["library"] = args.delegate
        EXTERNAL_DELEGATE["options"] = dict(o.split("=", 1) for o in args.delegate_option if "=" in o)
    t0 = time.perf_counter()
    try:
        body = {"probe": cmd_probe, "profile": cmd_profile, "run": cmd_run}[args.cmd](args)
        payload = {"ok": True, "agent_version": AGENT_VERSION, "result": body,
                   "agent_wall_s": time.perf_counter() - t0}
        code = 0
    except AgentError as exc:
        payload = {"ok": False, "agent_version": AGENT_VERSION,
                   "error": {"kind": exc.kind, "message": exc.message, "hint": exc.hint}}
        code = exc.code
    except Exception as exc:  # report, do not crash without a result
        payload = {"ok": False, "agent_version": AGENT_VERSION,
                   "error": {"kind": "failed", "message": f"{exc.__class__.__name__}: {exc}", "hint": None}}
        code = 1
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload, default=_json_default) + "\n")
    sys.stdout.flush()
    if args.cleanup and args.remove_when_done:
        shutil.rmtree(args.cleanup, ignore_errors=True)
    return code


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
