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
    json_emitted = False  # a result is on stdout already: a failure after it adds no second JSON document
    interrupted_note = "Interrupted; nothing partial was left behind."  # what Ctrl-C leaves, per command


STATE = _State()


def console():
    """A rich Console on stderr that honours -q; 160 columns when stderr is not a terminal (a CI
    log keeps table rows on one line) unless COLUMNS is set."""
    from rich.console import Console

    width = None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=True, quiet=STATE.quiet, highlight=False, width=width)


def log_to(con) -> Callable[[str], None]:
    """A `log(msg)` callback for the stages of long work (loading, converting, checking parity,
    which build and target a pipeline is on): each message starts a stage, shown on CON with its
    elapsed time (see `progress`); nothing with -q."""
    return _activity(con).stage


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
    STATE.json_emitted = True


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


class _Activity:
    """What a long command is doing, as the stages it announces and the counts it reports.

    On a terminal: a live rich display (spinner, stage, bar with i of N, elapsed), cleared when
    the command ends. Elsewhere (CI logs): plain timestamped lines, `[  12.3s] stage`, and for
    counts a line at each quarter or every 10 s at most. Nothing with -q."""

    def __init__(self, con):
        import time

        self.con, self.t0, self.live = con, time.monotonic(), con.is_terminal and not STATE.quiet
        self.bar, self.task, self.name, self.last_line = None, None, None, (0.0, -1)

    def _stamp(self) -> str:
        import time

        return f"[{time.monotonic() - self.t0:7.1f}s]"

    def start(self):
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.con, transient=True)
            self.bar.start()
        return self

    def stop(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def stage(self, message: str) -> None:
        """A new stage begins (the previous one is done)."""
        if STATE.quiet:
            return
        self.name = message
        if self.bar is not None:
            if self.task is not None:
                self.bar.update(self.task, visible=False)
            self.task = self.bar.add_task(message, total=None)
        else:
            self.con.print(f"{self._stamp()} {message}", markup=False, highlight=False, soft_wrap=True)

    def update(self, done: int, total: int, what: str | None = None) -> None:
        """DONE of TOTAL items of the current stage (samples calibrated, compared ...)."""
        import time

        if STATE.quiet:
            return
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(what or "working", total=total)
            self.bar.update(self.task, total=total, completed=done, **({"description": what} if what else {}))
            return
        now, quarter = time.monotonic(), (4 * done) // max(total, 1)
        last_time, last_quarter = self.last_line
        if done == total or quarter > last_quarter or now - last_time >= 10:
            self.last_line = (now, quarter)
            self.con.print(f"{self._stamp()}   {what or self.name or 'progress'}: {done}/{total}", markup=False,
                           highlight=False, soft_wrap=True)


_ACTIVITIES: dict = {}


def _activity(con) -> _Activity:
    """The activity display of CON (one per console: `log_to` and `progress` share it)."""
    if id(con) not in _ACTIVITIES:
        _ACTIVITIES[id(con)] = _Activity(con)
    return _ACTIVITIES[id(con)]


@contextlib.contextmanager
def progress(con):
    """While the block runs, CON shows the stages announced through `log_to(con)` and the counts
    given to the yielded `update(done, total[, what])` (live on a terminal, timestamped lines in
    CI, nothing with -q)."""
    act = _activity(con).start()
    try:
        yield act.update
    finally:
        act.stop()
        _ACTIVITIES.pop(id(con), None)


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
