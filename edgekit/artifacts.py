"""Artifacts (an on-device model file) and the JSON manifest written beside each one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, MissingDependency
from .specs import TensorSpec

FORMATS = {
    ".tflite": "tflite",
    ".pte": "executorch",
    ".ptl": "torchscript",
    ".onnx": "onnx",
}


def format_of(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.name.endswith("_edgetpu.tflite"):
        return "edgetpu"
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise BadInput(
            f"{p} is not an artifact edgekit can run (by its extension).",
            "Artifacts are .tflite, .pte, .ptl or .onnx files.",
        )
    return fmt


@dataclass
class Artifact:
    path: Path
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    recipe: str = "none"
    io_dtype: str = "float32"
    source: dict = field(default_factory=dict)  # path, sha256, framework, size_bytes
    tools: dict = field(default_factory=dict)  # package → version
    quantization: dict = field(default_factory=dict)  # what was actually quantized
    extra: dict = field(default_factory=dict)  # converter-specific: delegation, notes

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def to_dict(self) -> dict:
        return {
            "artifact": str(self.path),
            "format": self.format,
            "size_bytes": self.size_bytes,
            "sha256": file_sha256(self.path),
            "recipe": self.recipe,
            "io_dtype": self.io_dtype,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "source": self.source,
            "tools": self.tools,
            "quantization": self.quantization,
            **self.extra,
        }

    def write_manifest(self) -> Path:
        data = self.to_dict()
        data["artifact"] = self.path.name  # relative: the manifest travels with its file
        with atomic_output(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        return self.manifest_path


def manifest_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_manifest(path: str | os.PathLike) -> dict | None:
    mp = manifest_path(path)
    if not mp.is_file():
        return None
    try:
        return json.loads(mp.read_text())
    except (OSError, ValueError):
        return None


def file_sha256(path: str | os.PathLike) -> str:
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():  # SavedModel: hash every file, in a stable order
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(_digest(f))
        return h.hexdigest()
    return _digest(p).hex()


def _digest(p: Path) -> bytes:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def path_size(path: str | os.PathLike) -> int:
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def check_writable(dest: Path) -> None:
    """Fail before hours of work, not after: the destination folder must accept a new file."""
    folder = dest.parent
    if not folder.is_dir():
        raise BadInput(
            f"The output folder {folder} does not exist.",
            f"Create it (mkdir -p {folder}) or choose another path with -o.",
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(
            f"Cannot write to {folder}: {exc.strerror or exc}.",
            "Choose a writable location with -o PATH.",
        ) from exc


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike):
    """Yield a temporary path in dest's folder; rename it to dest only if the block succeeds.

    An exception or Ctrl-C inside the block removes the temporary file, so an interrupted run
    never leaves a truncated model behind.
    """
    dest = Path(dest)
    # The temporary name keeps the real suffix, so runtimes can open it before the rename.
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".partial{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


# -- structure: is the file whole, and of the format its extension says? ---------------------------
# Checked on the bytes alone, before any runtime opens the file: runtimes report a corrupt file
# as a failed load (exit 1), and ExecuTorch's native loader can abort the whole process.

def check_structure(path: str | os.PathLike, role: str | None = None) -> None:
    """BadInput (exit 2) naming what is wrong when PATH is not a whole, well-formed artifact.

    .tflite: the TFL3 identifier, and every table, vector and buffer the model points at lies
    inside the file. .pte: an ET?? identifier; the extended header's program and segment sizes
    fit the file; the root table lies inside the program. .ptl: a zip archive whose records read
    back (CRC) and hold the lite interpreter's bytecode. .onnx: parses as an ONNX model."""
    p = Path(path)
    fmt = format_of(p)
    size = p.stat().st_size
    problem = "the file is empty" if size == 0 else _PROBLEMS[fmt](p, size)
    if problem:
        raise corrupt(p, problem, role)


def corrupt(path: str | os.PathLike, problem: str, role: str | None = None) -> BadInput:
    """The error for a damaged artifact: what is wrong, and the fix."""
    p = Path(path)
    ext = ".tflite" if p.name.endswith(".tflite") else p.suffix.lower()
    size = p.stat().st_size if p.is_file() else 0
    return BadInput(f"{role + ' ' if role else ''}{p} is not a valid {ext} file ({problem}).",
                    f"Re-export or re-convert it (edgekit convert ... -o {p.name}); if it was copied or "
                    f"downloaded, check that the copy is complete ({size} bytes here).")


def _looks_like(head: bytes) -> str:
    """'; it looks like X' when the first bytes are another format's (a renamed file), else ''."""
    kind = ("a .tflite" if head[4:8] == b"TFL3" else "a .pte" if re.fullmatch(rb"ET\d\d", head[4:8])
            else "a zip archive (.ptl, .keras, .pt)" if head[:4] == b"PK\x03\x04"
            else "an HDF5 file (.h5)" if head[:8] == b"\x89HDF\r\n\x1a\n" else None)
    return f"; it looks like {kind}" if kind else ""


def _u(buf, at: int, n: int, signed: bool = False) -> int:
    if at < 0 or at + n > len(buf):
        raise IndexError(at)
    return int.from_bytes(buf[at:at + n], "little", signed=signed)


def _table_problem(buf, pos: int, end: int, what: str) -> str | None:
    """A flatbuffer table at POS: it and its vtable lie inside buf[:end]."""
    try:
        vtable = pos - _u(buf, pos, 4, signed=True)
        vt_len, tab_len = _u(buf, vtable, 2), _u(buf, vtable + 2, 2)
    except IndexError:
        return f"{what} at byte {pos} points past the end of the file"
    if pos + 4 > end or vtable + vt_len > end or pos + tab_len > end or vt_len < 4:
        return f"{what} at byte {pos} runs past the end of the data ({end} bytes)"
    return None


def _tflite_problem(p: Path, size: int) -> str | None:
    import mmap
    import struct

    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if size < 8 or buf[4:8] != b"TFL3":
            return f"no TFL3 identifier at bytes 4..8{_looks_like(buf[:8])}"
        problem = _table_problem(buf, _u(buf, 0, 4), size, "the model table")
        from .edgetpu_compat import _schema  # the TFLite schema module `inspect --edgetpu` reads with

        try:
            schema = _schema()
        except MissingDependency:  # no ai-edge-litert on this machine: the header checks stand
            schema = None
        if problem or schema is None:
            return problem

        def last(length, get):  # the last element of a vector lies inside the file (struct.error if not)
            if length():
                get(length() - 1)

        def tables(length, get, what):
            last(length, get)  # before the loop: a garbage length fails at once
            for i in range(length()):
                x = get(i)
                if problem := _table_problem(buf, x._tab.Pos, size, f"{what} {i}"):
                    raise ValueError(problem)
                yield x

        try:
            m = schema.Model.GetRootAs(buf, 0)
            list(tables(m.OperatorCodesLength, m.OperatorCodes, "operator code"))
            list(tables(m.MetadataLength, m.Metadata, "metadata entry"))
            for s in tables(m.SignatureDefsLength, m.SignatureDefs, "signature"):
                list(tables(s.InputsLength, s.Inputs, "signature input"))
                list(tables(s.OutputsLength, s.Outputs, "signature output"))
            for g in tables(m.SubgraphsLength, m.Subgraphs, "subgraph"):
                last(g.InputsLength, g.Inputs)
                last(g.OutputsLength, g.Outputs)
                for t in tables(g.TensorsLength, g.Tensors, "tensor"):
                    last(t.ShapeLength, t.Shape)
                for op in tables(g.OperatorsLength, g.Operators, "operator"):
                    last(op.InputsLength, op.Inputs)
                    last(op.OutputsLength, op.Outputs)
                    last(op.CustomOptionsLength, op.CustomOptions)
            for i, b in enumerate(tables(m.BuffersLength, m.Buffers, "buffer")):
                last(b.DataLength, b.Data)
                if b.Offset() > 1 and b.Offset() + b.Size() > size:  # weights stored after the flatbuffer
                    return f"buffer {i} ends at byte {b.Offset() + b.Size()}, past the end of the file"
        except ValueError as exc:
            return str(exc)
        except (IndexError, TypeError, OverflowError, struct.error):  # flatbuffers: offsets out of range
            return "the model's tables point past the end of the file"
    return None


def _pte_problem(p: Path, size: int) -> str | None:
    import mmap

    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if size < 8 or not re.fullmatch(rb"ET\d\d", buf[4:8]):
            return f"no ExecuTorch ET12 identifier at bytes 4..8{_looks_like(buf[:8])}"
        end = size
        if buf[8:12] == b"eh00":  # ExecuTorch's extended header (docs/source/pte-file-format.md)
            if size < 32 or _u(buf, 12, 4) < 24:
                return "its extended header is cut short"
            program, base = _u(buf, 16, 8), _u(buf, 24, 8)
            segments = _u(buf, 32, 8) if _u(buf, 12, 4) >= 32 and size >= 40 else 0
            if program > size:
                return f"its program data runs to byte {program}, the file ends at {size}"
            if base and (base < program or base + segments > size):
                return f"its segment data spans bytes {base}..{base + segments}, the file ends at {size}"
            end = program
        return _table_problem(buf, _u(buf, 0, 4), end, "the program table")


def _ptl_problem(p: Path, size: int) -> str | None:
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            records = {n.rsplit("/", 1)[-1] for n in z.namelist()}
            damaged = z.testzip()
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, ...: not a readable zip
        with open(p, "rb") as f:
            head = f.read(8)
        if head[:4] == b"PK\x03\x04":
            return f"a zip archive that is cut short or damaged: {exc}"
        return f"not a zip archive{_looks_like(head)}"
    if damaged:
        return f"the record {damaged} in the archive is damaged (CRC mismatch)"
    if "bytecode.pkl" not in records:
        what = "a TorchScript archive saved without the lite interpreter's bytecode (torch.jit.save?)" \
            if "data.pkl" in records else "a zip archive, but not a PyTorch module"
        return f"{what}: no bytecode.pkl record; save it with module._save_for_lite_interpreter"
    return None


def _onnx_problem(p: Path, size: int) -> str | None:
    try:
        import onnx
    except ImportError:  # onnxruntime alone on this machine: it reports what it cannot load
        return None
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        with open(p, "rb") as f:
            head = f.read(8)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"it does not parse as an ONNX protobuf: {first}{_looks_like(head)}"
    if model.ir_version < 1 or not model.graph.output:
        return "it parses, but holds no ONNX graph with outputs"
    return None


_PROBLEMS = {"tflite": _tflite_problem, "edgetpu": _tflite_problem, "executorch": _pte_problem,
             "torchscript": _ptl_problem, "onnx": _onnx_problem}
