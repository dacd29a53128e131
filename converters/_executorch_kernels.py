"""Which kernel library serves each operator a `.pte` leaves outside its delegates, and whether
the runtime on the device has it.

The host wheel's runtime (executorch.extension.pybindings.portable_lib) registers portable,
optimized and quantized kernels together, so a smoke run on the host proves nothing about a
device runtime built with fewer. ExecuTorch ships the kernel registration yaml of its portable
(`kernels/portable/functions.yaml`, `custom_ops.yaml`, `et_copy_ops.yaml`) and quantized
(`kernels/quantized/quantized.yaml`) libraries inside the package: an operator listed there has
a kernel in that library; one the host wheel registers but no yaml lists comes from the
optimized (or another host-only) library. A few primitive operators are built into the runtime
core (executorch_prim::*, sym_size, sym_numel, _local_scalar_dense).

| library    | on a device runtime                                         |
|------------|-------------------------------------------------------------|
| prim       | always (runtime core)                                       |
| portable   | in every standard build                                     |
| quantized  | when the app links the quantized kernels                    |
| host-only  | the host wheel's optimized kernels: absent from a portable build |
| none       | nowhere: the .pte cannot load                               |
"""

from __future__ import annotations

import functools
from pathlib import Path

PRIM = {"aten::sym_size.int", "aten::sym_numel", "aten::_local_scalar_dense", "aten::sym_stride.int"}
DEFAULT_TARGET = ("portable",)  # what a device runtime of unknown build is assumed to have
ALWAYS = ("prim",)


@functools.lru_cache(maxsize=1)
def libraries() -> dict[str, frozenset]:
    """{"portable": ops, "quantized": ops} from the registration yaml shipped in the installed
    executorch package, op names as the runtime registers them ("aten::add.out",
    "quantized_decomposed::quantize_per_tensor.out"). Empty sets when a yaml is missing."""
    import yaml

    import executorch

    root = Path(list(executorch.__path__)[0]) / "kernels"  # a namespace package: no __file__
    files = {"portable": ("portable/functions.yaml", "portable/custom_ops.yaml", "portable/et_copy_ops.yaml"),
             "quantized": ("quantized/quantized.yaml",)}
    out = {}
    for lib, names in files.items():
        ops = set()
        for name in names:
            path = root / name
            if not path.is_file():
                continue
            for entry in yaml.safe_load(path.read_text()) or []:
                op = str(entry.get("op") or entry.get("func", "").split("(")[0])
                if op:
                    ops.add(op if "::" in op else f"aten::{op}")
        out[lib] = frozenset(ops)
    return out


@functools.lru_cache(maxsize=1)
def host_registered() -> frozenset:
    """The operators the host wheel's runtime registers (every library it was built with)."""
    try:
        from executorch.extension.pybindings import portable_lib

        return frozenset(portable_lib._get_operator_names())  # no public listing in executorch 1.x
    except Exception:  # an older wheel without it: only the yaml is known
        return frozenset()


def program_operators(program) -> list[str]:
    """The operators every method of an ExecutorchProgramManager calls outside its delegates,
    as "namespace::name.overload", in first-use order."""
    seen = []
    for plan in program.executorch_program.execution_plan:
        for op in plan.operators:
            name = f"{op.name}.{op.overload}" if op.overload else op.name
            if name not in seen:
                seen.append(name)
    return seen


def library_of(op: str) -> str:
    """Which library serves OP: prim, portable, quantized, host-only or none (see the table)."""
    libs = libraries()
    if op in PRIM or op.startswith("executorch_prim::"):
        return "prim"
    for lib in ("portable", "quantized"):
        if op in libs.get(lib, ()):
            return lib
    return "host-only" if op in host_registered() else "none"


def check(ops: list[str], target: tuple[str, ...] = DEFAULT_TARGET) -> dict:
    """OPS (from `program_operators`) against the kernel libraries a TARGET runtime has (default:
    portable only, an unknown device). Returns the `kernels` entry of the convert result:
    {target: [libraries], ops: [{op, library}], missing: [ops the target has no kernel for],
    passed}."""
    rows = [{"op": op, "library": library_of(op)} for op in ops]
    have = set(target) | set(ALWAYS)
    missing = [r["op"] for r in rows if r["library"] not in have]
    return {"target": list(target), "ops": rows, "missing": missing, "passed": not missing}


def describe(kernels: dict) -> str | None:
    """One note: each non-delegated op with the library that serves it; None without any."""
    rows = [r for r in kernels["ops"] if r["library"] != "prim"]
    if not rows:
        return None
    said = ", ".join(f"{r['op']} ({r['library']})" for r in rows)
    return f"{len(rows)} operator(s) run outside XNNPACK, by kernel library: {said}."


def failure(kernels: dict) -> str:
    """Why the .pte would not load on the target runtime (for CheckFailed and the manifest)."""
    libs = {r["op"]: r["library"] for r in kernels["ops"]}
    said = ", ".join(f"{op} ({'host wheel only' if libs[op] == 'host-only' else libs[op]})" for op in kernels["missing"])
    return (f"The .pte calls operators that a device runtime with {' + '.join(kernels['target'])} kernels has no "
            f"kernel for: {said}. It runs on this host only because the host wheel links more kernel libraries.")
