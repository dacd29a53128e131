"""How every command shows its result: rendered on stderr (rich), and with `--json` the result
dict as JSON on stdout, while anything frameworks print goes to stderr. Imports only click at
module level (rich and numpy load when a command runs)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Callable

import click


class _State:
    """Global flags of the `edgekit` group (--debug, -q, -v) and what Ctrl-C leaves behind."""

    debug = False
    quiet = False
    verbose = False
    interrupted_note = "Interrupted; nothing partial was left behind."  # what Ctrl-C leaves, per command


STATE = _State()


def console():
    """A rich Console on stderr that honours -q; 160 columns when stderr is not a terminal (a CI
    log keeps table rows on one line) unless COLUMNS is set."""
    from rich.console import Console

    width = None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=True, quiet=STATE.quiet, highlight=False, width=width)


def log_to(con) -> Callable[[str], None]:
    """A `log(msg)` callback that writes to CON only with -v."""
    return lambda m: con.log(m) if STATE.verbose else None


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """While a command works, anything printed to stdout (TF, converters) goes to stderr, so that
    `--json` output on stdout stays machine-readable. ENABLED False: a no-op."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    saved = os.dup(fd) if fd is not None else None
    try:
        if fd is not None:
            os.dup2(sys.stderr.fileno(), fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved is not None:
            os.dup2(saved, fd)
            os.close(saved)


def emit_json(result: dict) -> None:
    """Print RESULT as indented JSON on stdout (numpy scalars/arrays as numbers/lists, anything
    else unknown as its str)."""
    click.echo(json.dumps(result, indent=2, default=_json_default))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


@contextlib.contextmanager
def spinner(con, text: str | None):
    """A rich status spinner saying TEXT while the block runs (none with -q or TEXT None)."""
    if text is None or STATE.quiet:
        yield
        return
    with con.status(text, spinner="dots"):
        yield


@contextlib.contextmanager
def progress(con):
    """A progress callback `update(done, total)` that shows a transient bar (none with -q)."""
    from rich.progress import Progress

    bar = Progress(console=con, transient=True, disable=STATE.quiet)
    task = None
    with bar:
        def update(done, total):
            nonlocal task
            if task is None:
                task = bar.add_task("parity", total=total)
            bar.update(task, completed=done)

        yield update


def show(as_json: bool, work: Callable, render: Callable | None, status: str | None = None) -> dict:
    """Run a command's work and show its result, the same way for every command.

    Args:
        as_json: the command's --json flag: stdout is redirected to stderr while working and
            the result is printed as JSON on stdout at the end.
        work: `work(con) -> dict`, given the stderr Console; returns the result dict.
        render: `render(con, result)` draws it on stderr (an edgekit.report function), or None.
        status: text of a spinner shown while `work` runs, or None for no spinner.

    Returns the result dict. Errors raised by `work` propagate (edgekit.errors exit codes).
    """
    con = console()
    with stdout_to_stderr(as_json):
        with spinner(con, status):
            result = work(con)
        if render is not None:
            render(con, result)
    if as_json:
        emit_json(result)
    return result
