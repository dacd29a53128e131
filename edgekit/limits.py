"""One table of limits on what a user can hand edgekit, and the checks that apply them.

A hostile or mistaken input must end in a clear error, not in exhausted memory or a hang:
a pipeline matrix that expands to millions of builds, `--runs 1000000000`, an input shape of
1x3x100000x100000, a report.json that is /dev/zero, a `--data` path that is a FIFO. Every
limit below is named in the message that refuses it (exit 2, BadInput), so the user knows the
bound and can split the work. The values are far above any real use: they exist to stop
runaway inputs, not to shape normal ones. Only the standard library is imported here.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from .errors import BadInput

LIMITS = {
    # name: (value, what it bounds) — the README's "Limits" table is this table.
    "max_builds": (256, "builds one pipeline file may expand to (a matrix multiplies its lists)"),
    "max_runs": (10_000_000, "timed runs of `profile --runs` and a pipeline's `runs`"),
    "max_warmup": (10_000, "untimed warm-up runs of `profile --warmup`"),
    "max_threads": (1024, "runtime threads of `profile --threads`"),
    "max_input_elements": (1 << 28, "elements of one input tensor after --input-shape (2^28, 1 GiB of float32)"),
    "max_report_bytes": (64 << 20, "size of a report.json read by `edgekit report` (64 MiB)"),
    "max_pipeline_bytes": (1 << 20, "size of an edgekit.yaml (1 MiB)"),
    "max_yaml_nodes": (100_000, "YAML nodes of an edgekit.yaml once aliases are expanded"),
}


def limit(name: str) -> int:
    """The value of limit NAME (a key of LIMITS). KeyError for an unknown name."""
    return LIMITS[name][0]


def check_count(value: int, name: str, what: str) -> int:
    """Return VALUE when it is within limit NAME of LIMITS.

    Args:
        value: the count the user asked for.
        name: a key of LIMITS ("max_runs", "max_builds" ...).
        what: how the count is shown in the message ("--runs 1000000000").
    Raises BadInput (exit 2) naming the limit and its value when VALUE exceeds it.
    """
    bound = limit(name)
    if value > bound:
        raise BadInput(f"{what} exceeds edgekit's limit of {bound:,} ({LIMITS[name][1]}).",
                       f"Use at most {bound:,}; split the work if you really need more.")
    return value


def check_shape_size(name: str, dims) -> None:
    """Refuse a tensor shape DIMS (ints) for input NAME whose element count exceeds the
    `max_input_elements` limit, before anything allocates it. Raises BadInput (exit 2)."""
    n = math.prod(int(d) for d in dims)
    bound = limit("max_input_elements")
    if n > bound:
        shown = "x".join(str(d) for d in dims)
        raise BadInput(f"The shape {shown} of input {name!r} has {n:,} elements, over edgekit's limit of "
                       f"{bound:,} per input ({LIMITS['max_input_elements'][1]}).",
                       "Give the shape you ship on the device (batch 1, real image size) with --input-shape.")


def regular_file(path, what: str, max_bytes: str | None = None, hint: str = "Check the path.") -> Path:
    """Check that PATH names an existing regular file (symlinks followed) and return it as a Path.

    FIFOs, sockets, devices (/dev/zero) and folders are refused: reading them blocks forever or
    never ends. Args: WHAT names the file in messages ("The report"); MAX_BYTES optionally names a
    LIMITS entry bounding its size; HINT is the fix for a missing or oversized file.
    Raises BadInput (exit 2) for a missing path, a non-regular file or one over the limit.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BadInput(f"{what} {p} does not exist.", hint) from None
    except OSError as exc:
        raise BadInput(f"Cannot read {what.lower()} {p}: {exc.strerror or exc}.", hint) from exc
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise BadInput(f"{what} {p} is {kind}, not a regular file.",
                       "Pass a regular file (edgekit does not read pipes, devices or folders here).")
    if max_bytes is not None and st.st_size > limit(max_bytes):
        raise BadInput(f"{what} {p} is {st.st_size:,} bytes, over edgekit's limit of {limit(max_bytes):,} "
                       f"({LIMITS[max_bytes][1]}).", hint)
    return p


def existing_regular(path, what: str) -> Path:
    """`regular_file` for a PATH that exists; a missing PATH is returned unchecked (the caller
    says "does not exist" in its own words). Raises BadInput (exit 2) for a FIFO, device or folder."""
    p = Path(path)
    return regular_file(p, what) if os.path.lexists(p) else p


def readable_input(path, what: str) -> Path:
    """Like `regular_file`, but a folder is accepted too (an image folder, a SavedModel):
    refuses FIFOs, sockets and devices. Raises BadInput (exit 2)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        return p  # the caller reports a missing path in its own words
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise BadInput(f"{what} {p} is {_kind(st.st_mode)}, not a regular file or folder.",
                       "Pass a regular file (edgekit does not read pipes or devices).")
    return p


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
