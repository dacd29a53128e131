"""What a Ray worker runs for `edgekit run --cluster`: one build, or one measurement on one device.

Plain functions (edgekit.cluster wraps them with `ray.remote`), so a worker imports them by name
and they read like the local run they reuse: `pipeline.convert_build` for a build and
`profiling.profile` for a measurement. Files travel as values through Ray's object store, never
through a shared disk: `pack` turns paths into {path: {relative file: bytes}}, `unpack` writes
them into a scratch folder on the worker.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import tempfile
from pathlib import Path

DEVICE_PREFIX = "edgekit:"  # a device is the Ray custom resource "edgekit:<target string>", capacity 1


def device_resource(target: str) -> str:
    """The Ray custom resource name of TARGET (a target string as the pipeline names it)."""
    return DEVICE_PREFIX + target.strip()


def file_part(path: str | None) -> str | None:
    """The file of a path-or-factory string ("net.py:make" → "net.py"), None for no/random data or
    an installed module's factory (nothing to ship)."""
    if not path or path == "random":
        return None
    if Path(path).exists():
        return path
    head = path.rpartition(":")[0] if ":" in path else path
    return head if head and Path(head).exists() else None


def pack(paths) -> dict:
    """PATHS (files or folders; the same path once) → {path: {relative name: bytes}} ("" is the
    file itself). A model file's companions beside it (`net.onnx.data`) travel with it."""
    out = {}
    for src in dict.fromkeys(p for p in paths if p):
        root = Path(src)
        if root.is_dir():
            out[src] = {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}
        else:
            out[src] = {"": root.read_bytes()}
            for sib in sorted(root.parent.glob(root.name + ".*")):
                if sib.is_file() and sib.suffix != ".json":
                    out[src]["+" + sib.name[len(root.name):]] = sib.read_bytes()
    return out


def unpack(packed: dict, root: Path) -> dict:
    """Write PACKED (from `pack`) under ROOT; returns {original path: path here}."""
    where = {}
    for i, (src, files) in enumerate(packed.items()):
        base = root / str(i) / Path(src).name
        for rel, data in files.items():
            dest = base if rel == "" else base.with_name(base.name + rel[1:]) if rel.startswith("+") else base / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        where[src] = str(base)
    return where


def pipeline_inputs(p) -> list[str]:
    """The files pipeline P's builds read (model, weights, data, calibrations), to `pack`."""
    return [x for x in (file_part(v) for v in (p.model, p.weights, p.data, p.calibration,
                                               *(b.calibration for b in p.builds))) if x]


def _moved(value, where: dict):
    """VALUE (a path-or-factory string or None) with its file part replaced by its copy in WHERE.
    Matched by name, not by looking on disk: on a worker a relative path (the driver's `edgekit run
    edgekit.yaml` from the pipeline's folder) names nothing in the worker's own folder."""
    if value is None:
        return value
    for src, here in where.items():
        if value == str(src) or value.startswith(str(src) + ":"):  # the file, or file.py:factory
            return here + value[len(str(src)):]
    return value


def node_info() -> dict:
    """Where this task runs: {"id": Ray node id, "ip": node address, "host": hostname}."""
    import ray

    return {"id": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname()}


def build_task(p, b, inputs: dict, artifact_name: str, key: str, versions: dict):
    """Build B of pipeline P on this worker. INPUTS is `pack(pipeline_inputs(p))`, ARTIFACT_NAME the
    artifact's file name, KEY its cache key, VERSIONS the driver's tool_versions() (part of KEY: a
    worker with other versions refuses, exit 3 in the error, rather than build what KEY does not
    describe). Returns (meta, files): meta is {"convert": result, "node": node_info(), "paths":
    {path here: original path}} or {"error": {message, hint, exit_code}, "node": ...} when edgekit
    refused the build; files is {name: bytes} of the build folder (artifact, manifest,
    companions). Anything else raised is a crash (Ray retries it)."""
    from .errors import EdgekitError
    from .pipeline import convert_build, error_of, tool_versions

    here = tool_versions()
    if here != versions:
        differ = sorted(set(here) | set(versions), key=str)
        differ = [f"{d} {here.get(d, 'missing')} (driver: {versions.get(d, 'missing')})" for d in differ
                  if here.get(d) != versions.get(d)]
        return {"error": {"message": f"{b.name}: the worker at {socket.gethostname()} has other tool versions than "
                                     "the machine running edgekit run: " + ", ".join(differ) + ".",
                          "hint": "Install the same versions on every worker (pip install -c scripts/constraints.txt "
                                  "'edgekit-ml[all,ray]').", "exit_code": 3}, "node": node_info(), "paths": {}}, {}

    with tempfile.TemporaryDirectory(prefix="edgekit-build-") as tmp:
        where = unpack(inputs, Path(tmp) / "in")
        q = dataclasses.replace(p, model=_moved(p.model, where), weights=_moved(p.weights, where),
                                data=_moved(p.data, where), calibration=_moved(p.calibration, where),
                                builds=[dataclasses.replace(x, calibration=_moved(x.calibration, where)) for x in p.builds])
        qb = next(x for x in q.builds if x.name == b.name)
        folder = Path(tmp) / "out" / b.name
        folder.mkdir(parents=True)
        paths = {str(folder): "@BUILD@", **{v: k for k, v in where.items()}}
        try:
            result = convert_build(q, qb, folder / artifact_name, key)
        except EdgekitError as exc:
            return {"error": error_of(exc), "node": node_info(), "paths": paths}, {}
        files = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
        return {"convert": result, "node": node_info(), "paths": paths}, files


def measure_task(files: dict, artifact_name: str, target: str, settings: dict, data: dict):
    """Measure the artifact in FILES ({name: bytes}) on TARGET from this worker, the node Ray chose
    because it offers TARGET's device resource. SETTINGS: runs, warmup, threads; DATA:
    `pack([data file])` or {}. Returns profiling.profile's result with "node" (node_info()), or
    {"target", "error", "node"} when edgekit could not measure (unreachable: exit code 4 inside)."""
    from .errors import EdgekitError
    from .pipeline import error_of
    from .profiling import profile

    with tempfile.TemporaryDirectory(prefix="edgekit-measure-") as tmp:
        for name, blob in files.items():
            (Path(tmp) / name).write_bytes(blob)
        where = unpack(data, Path(tmp) / "data")
        try:
            result = profile(Path(tmp) / artifact_name, target=target, data=next(iter(where.values()), None), **settings)
        except EdgekitError as exc:
            return {"target": target, "error": error_of(exc), "node": node_info()}
        result = json.loads(json.dumps(result, default=str).replace(tmp, "@BUILD@"))
        result["node"] = node_info()
        return result
