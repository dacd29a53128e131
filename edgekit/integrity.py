"""Is an artifact file whole, and of the format its extension says? Checked on the bytes alone,
before any runtime opens the file: runtimes report a corrupt file as a failed load (exit 1), and
ExecuTorch's native loader can abort the whole process."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .artifacts import format_of
from .errors import BadInput, MissingDependency


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
