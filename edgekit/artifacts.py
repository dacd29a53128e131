"""Artifacts (an on-device model file) and the JSON manifest written beside each one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .specs import TensorSpec

FORMATS = {
    ".tflite": "tflite",
    ".pte": "executorch",
    ".ptl": "torchscript",
    ".onnx": "onnx",
}


def format_of(path: str | os.PathLike) -> str:
    """The artifact format of PATH by its name alone: "edgetpu" for *_edgetpu.tflite, else by
    extension per FORMATS (tflite, executorch, torchscript, onnx; case-insensitive).
    Raises BadInput (exit 2) for any other extension."""
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
    """An on-device model file a converter wrote, and what the manifest beside it records.

    Attributes:
        path: the model file.
        format: a value of FORMATS, or "edgetpu".
        inputs, outputs: tensor specs of the artifact, with scale/zero_point for quantized I/O.
        recipe: the quantization recipe applied ("none", "fp16", "dynamic-int8", "int8", "int16x8").
        io_dtype: dtype of the model's inputs/outputs ("float32", "int8", "uint8", ...).
        source: the source model: path, sha256, framework, size_bytes.
        tools: package → version of the tools that built it.
        quantization: what was actually quantized (`quantization` of schema `$defs/convert`).
        extra: converter-specific entries merged at the top of `to_dict()` (delegation, notes).
    """

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
        """The manifest's path: the file's name plus ".json" (model.tflite → model.tflite.json)."""
        return manifest_path(self.path)

    @property
    def size_bytes(self) -> int:
        """The file's size in bytes (read from disk each time)."""
        return self.path.stat().st_size

    def to_dict(self) -> dict:
        """The artifact's entries of the `convert` result (schema `$defs/convert`): artifact
        (path), format, size_bytes, sha256 (hashed now), recipe, io_dtype, inputs/outputs
        (`$defs/tensor`), source, tools, quantization, then `extra`'s keys."""
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
        """Write `to_dict()` (with `artifact` as the bare file name, so the manifest travels with
        its file) to `manifest_path` atomically; return that path. When the manifest cannot be
        written (disk full), the artifact `atomic_output` just renamed is undone (the previous file
        put back, or the new one removed) and the error propagates: the two land as a pair."""
        backup = _PREVIOUS.pop(Path(self.path), False)
        try:
            data = self.to_dict()
            data["artifact"] = self.path.name  # relative: the manifest travels with its file
            with atomic_output(self.manifest_path) as tmp:
                tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        except BaseException:
            _restore_previous(Path(self.path), backup)  # artifact and manifest land together or not at all
            raise
        if backup:
            with contextlib.suppress(OSError):
                backup.unlink()
        return self.manifest_path


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest beside artifact PATH: its name plus ".json" (model.tflite → model.tflite.json)."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest of artifact PATH as a dict (`Artifact.to_dict()` as written), or None when
    there is none or it cannot be read or parsed, or holds no JSON object (never raises)."""
    mp = manifest_path(path)
    if not mp.is_file():
        return None
    try:
        data = json.loads(mp.read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
        return None
    return data if isinstance(data, dict) else None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of PATH as 64 hex digits. For a folder (SavedModel): one hash over every file's
    relative path and content digest, in sorted order, so the same tree always hashes the same."""
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
    """Size of PATH in bytes; for a folder, the sum over all files under it."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def check_writable(dest: Path) -> None:
    """Fail before hours of work, not after: DEST must be a name the system accepts (each part at
    most NAME_MAX bytes, the whole under PATH_MAX), not an existing folder, in an existing folder
    that accepts a new file. Raises BadInput (exit 2) naming the problem."""
    dest = Path(dest)
    folder = dest.parent
    name_max, path_max = _name_limits(folder)
    too_long = [part for part in dest.parts if len(os.fsencode(part)) > name_max]
    if too_long:
        raise BadInput(f"The output name {too_long[0][:40]}… is {len(os.fsencode(too_long[0]))} bytes; this "
                       f"file system allows {name_max} per name.", "Choose a shorter name with -o.")
    if len(os.fsencode(str(dest))) >= path_max:
        raise BadInput(f"The output path is {len(os.fsencode(str(dest)))} bytes; the system allows {path_max - 1}.",
                       "Choose a shorter path with -o.")
    if dest.is_dir():
        raise BadInput(f"The output {dest} is a folder.", f"Name a file inside it, e.g. -o {dest / 'model'}<suffix>.")
    if not folder.is_dir():
        raise BadInput(
            f"The output folder {folder} does not exist.",
            f"Create it (mkdir -p {folder}) or choose another path with -o.",
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(dest, ".probe"), suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(
            f"Cannot write to {folder}: {exc.strerror or exc}.",
            "Choose a writable location with -o PATH.",
        ) from exc


def _name_limits(folder: Path) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) of FOLDER's file system (255, 4096 when the system does not say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 255, 4096


def _temp_prefix(dest: Path, suffix: str) -> str:
    """The `.NAME.` prefix of a temporary file beside DEST, shortened (NAME cut) when the whole
    temporary name, with mkstemp's 8 random characters and SUFFIX, would exceed NAME_MAX (255
    bytes): a legal 247-byte output name must not be refused because of its temporary name."""
    room = 255 - 2 - 8 - len(os.fsencode(suffix))
    name = os.fsencode(dest.name)
    if len(name) > room:
        name = name[: max(room, 1)]
    return "." + name.decode(errors="ignore") + "."


_PREVIOUS: dict = {}  # artifact path → hard link to the file it replaced (None: there was none)


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike):
    """Yield a temporary path in dest's folder; rename it to dest only if the block succeeds.

    An exception or Ctrl-C inside the block removes the temporary file, so an interrupted run
    never leaves a truncated model behind. The temporary name never exceeds NAME_MAX (255 bytes).
    For an artifact (a suffix of FORMATS) the file it replaces is kept as a hard link until
    `Artifact.write_manifest` lands the manifest: artifact and manifest land as a pair (if the
    manifest cannot be written, the previous artifact, or none, is put back).
    An OSError writing the temporary file (disk full) is raised naming DEST, not the temporary.
    """
    dest = Path(dest)
    # The temporary name keeps the real suffix, so runtimes can open it before the rename.
    suffix = f".partial{dest.suffix}" if len(dest.suffix) <= 16 else ".partial"
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(dest, suffix), suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    backup = False
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        if dest.suffix.lower() in FORMATS:
            backup = _PREVIOUS[dest] = _keep_previous(dest)
        os.replace(tmp_path, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if backup is not False:  # the rename itself failed: dest is untouched, drop the link
            _PREVIOUS.pop(dest, None)
            with contextlib.suppress(OSError, TypeError):
                backup.unlink()
        if exc.filename is not None and Path(exc.filename) == tmp_path:
            raise OSError(exc.errno, exc.strerror, str(dest)) from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _keep_previous(dest: Path) -> Path | None:
    """A hard link to the current DEST (None when there is none or links are not supported)."""
    if not dest.is_file():
        return None
    backup = Path(tempfile.mktemp(prefix=_temp_prefix(dest, ".previous"), suffix=".previous", dir=dest.parent))
    try:
        os.link(dest, backup)
    except OSError:
        return None
    return backup


def _restore_previous(dest: Path, backup) -> None:
    """Undo an artifact's rename: put BACKUP (from _keep_previous) back at DEST, or remove DEST
    when it replaced nothing (BACKUP None). BACKUP False: nothing was renamed, nothing to undo."""
    if backup is False:
        return
    with contextlib.suppress(OSError):
        if backup is None:
            dest.unlink()
        else:
            os.replace(backup, dest)
