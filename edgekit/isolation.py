"""Run native framework work where a crash cannot take the CLI down: a child process.

TensorFlow's converter, TFLite calibration, torch.export, ExecuTorch lowering and litert-torch
are native code that can die with SIGSEGV/SIGABRT or be killed for memory (TensorFlow 2.21's
int8 calibration of a Keras LSTM that keeps its time loop is one such crash). `run_in_child`
runs one edgekit function (`build.convert`) in a fresh `python -m edgekit.isolation` process:

- the parent never imports a framework; the child reports log lines, progress, the step it is
  in (`step()`), and finally its result or its edgekit error, as JSON lines on a private pipe;
- a child that dies without a result becomes CheckFailed (exit 1) naming the step, the signal
  and what to try; whatever it left in the output folder (`.NAME.*.partial*`) and its private
  TMPDIR (SavedModel exports, autograph files) are removed on every exit path;
- Ctrl-C, SIGTERM and SIGHUP reach the child, which cleans up as on Ctrl-C; the parent waits
  for it (a few seconds, then SIGKILL) and removes what is left.

Only calls whose arguments are plain data (paths, strings, numbers, lists, dicts) can cross the
process boundary; in-memory models and arrays from the Python API run in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import CheckFailed, EdgekitError, error_for_kind

EVENT_FD_ENV = "EDGEKIT_ISOLATION_FD"
GRACE_S = 10.0  # how long an interrupted child may take to clean up before SIGKILL
SIGNAL_NAMES = {getattr(signal, n): n for n in ("SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE", "SIGKILL",
                                                  "SIGTERM", "SIGINT", "SIGHUP")}

_events = None  # in the child: the pipe to the parent


class ChildCrashed(CheckFailed):
    """The child process died without a result (a native crash or a kill) (exit 1)."""

    kind = "crashed"


def plain(value) -> bool:
    """True when VALUE can cross the process boundary as JSON (None, bool, int, float, str,
    Path, and lists/tuples/dicts of those)."""
    if value is None or isinstance(value, (bool, int, float, str, Path)):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    return False


def step(name: str, hint: str | None = None) -> None:
    """Say which native step starts (in the child; a no-op in-process). NAME is shown if the
    child dies in it ("converting to tflite (int8)"); HINT is what to try then."""
    if _events is not None:
        _emit({"event": "step", "name": name, "hint": hint})


def _emit(event: dict) -> None:
    _events.write(json.dumps(event, default=str) + "\n")
    _events.flush()


def run_in_child(func: str, kwargs: dict, *, output: Path | None, log=None, progress=None,
                 debug: bool = False) -> dict:
    """Call FUNC ("module:function" inside edgekit) with KWARGS (plain data) in a child process.

    Args:
        func: e.g. "edgekit.build:convert"; it must accept `log` and `progress` callbacks.
        kwargs: its keyword arguments, JSON-serializable.
        output: the artifact path the call writes; its folder is swept of the call's temporary
            files if the child dies.
        log: callable(str) receiving the child's log lines.
        progress: callable(i, n) receiving the child's progress.
        debug: let the child's stderr through (else only edgekit's own lines reach it).

    Returns what FUNC returned (a dict). Raises the child's EdgekitError (same class and exit
    code), ChildCrashed (exit 1) when it died without a result, KeyboardInterrupt when
    interrupted (after the child cleaned up).
    """
    read_fd, write_fd = os.pipe()
    scratch = tempfile.mkdtemp(prefix="edgekit-child-")
    env = dict(os.environ, **{EVENT_FD_ENV: str(write_fd), "TMPDIR": scratch})
    before = _partials(output)
    state = {"step": "starting", "hint": None, "result": None, "error": None}
    proc = None
    # Without --debug the child's fd 2 (TensorFlow's start-up lines, native logs) goes to a file
    # whose tail explains a crash; edgekit's own lines travel as events.
    stderr_log = Path(scratch) / "child-stderr.log"
    try:
        with open(stderr_log, "wb") if not debug else open(os.devnull, "wb") as err_file:
            proc = subprocess.Popen([sys.executable, "-m", "edgekit.isolation", func], stdin=subprocess.PIPE,
                                    stdout=sys.stderr.fileno() if debug else subprocess.DEVNULL,
                                    stderr=None if debug else err_file, env=env, pass_fds=(write_fd,))
        os.close(write_fd)
        write_fd = -1
        proc.stdin.write(json.dumps(kwargs, default=str).encode())
        proc.stdin.close()
        reader = threading.Thread(target=_read_events, args=(read_fd, state, log, progress), daemon=True)
        reader.start()
        with _forward_signals(proc):
            while reader.is_alive():
                reader.join(0.1)
        code = proc.wait()
        state["native_log"] = _tail(stderr_log)
    except BaseException:
        if proc is not None:
            _stop(proc)
        _sweep(output, before)
        raise
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        shutil.rmtree(scratch, ignore_errors=True)
    if state["result"] is not None:
        return state["result"]
    _sweep(output, before)
    err = state["error"]
    if err is not None:
        if err["kind"] == "interrupted":
            raise KeyboardInterrupt
        if err["kind"] == "internal":
            raise RuntimeError(f"{err['message']}\n--- in the child process ---\n{err.get('traceback', '')}")
        raise error_for_kind(err["kind"], err["message"], err.get("hint"))
    raise _crash(code, state)


def _crash(code: int, state: dict) -> ChildCrashed:
    if code < 0:
        sig = SIGNAL_NAMES.get(-code, f"signal {-code}")
        how = f"crashed with {sig}" if sig != "SIGKILL" else "was killed (SIGKILL: out of memory?)"
    else:
        how = f"exited with status {code} without a result"
    hint = state["hint"] or "Rerun with --debug to see the native log; if it persists, report it with the model."
    if state.get("native_log"):
        hint += "\nLast native log line: " + state["native_log"]
    return ChildCrashed(f"The native step '{state['step']}' {how}; nothing was written. This is a crash inside "
                        "the framework, not an edgekit check.", hint)


def _tail(path: Path) -> str:
    """The last meaningful line a crashed child printed on fd 2 (TensorFlow's start-up notices skipped)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    noise = ("All log messages before absl::InitializeLog", "oneDNN custom operations", "Fatal Python error",
             "Current thread", "Extension modules:", "Thread 0x", "  File ")
    lines = [l.strip() for l in lines if l.strip() and not any(n in l for n in noise)]
    return lines[-1][:300] if lines else ""


def _read_events(fd: int, state: dict, log, progress) -> None:
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "step":
                state["step"], state["hint"] = ev["name"], ev.get("hint")
            elif kind == "log" and log:
                log(ev["message"])
            elif kind == "progress" and progress:
                progress(ev["i"], ev["n"])
            elif kind == "result":
                state["result"] = ev["value"]
            elif kind == "error":
                state["error"] = ev


class _forward_signals:
    """While the child runs, SIGTERM/SIGHUP to the parent are passed on to it (Ctrl-C reaches the
    whole process group by itself), then surface in the parent as KeyboardInterrupt."""

    def __init__(self, proc):
        self.proc, self.saved = proc, {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.saved[sig] = signal.signal(sig, self._forward)
        return self

    def _forward(self, signum, frame):
        from .errors import note_interrupt

        note_interrupt(signum)
        try:
            self.proc.send_signal(signum)
        except OSError:
            pass
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _stop(proc) -> None:
    """Interrupt the child (it cleans up as on Ctrl-C; a terminal's Ctrl-C may already have
    reached it, a signal sent to edgekit alone has not), let it finish, then make sure it is gone."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
        except OSError:
            pass
    deadline = time.monotonic() + GRACE_S
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            proc.wait(0.2)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _partials(output: Path | None) -> set:
    if output is None or not output.parent.is_dir():
        return set()
    return set(output.parent.glob(f".{output.name}.*"))


def _sweep(output: Path | None, before: set) -> None:
    """Remove the temporary files the call made beside OUTPUT (atomic_output's `.NAME.*.partial*`,
    check_writable's probes) that were not there before it started."""
    for f in _partials(output) - before:
        try:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
        except OSError:
            pass


def _child_main(func: str) -> int:
    """The child: read kwargs from stdin, call FUNC, report on the event pipe."""
    global _events
    import importlib
    import traceback

    from .errors import watch_ctrl_c

    _events = os.fdopen(int(os.environ.pop(EVENT_FD_ENV)), "w", encoding="utf-8")
    watch_ctrl_c()
    kwargs = json.loads(sys.stdin.read())
    if not kwargs.get("debug"):
        from .native_log import quiet_framework_logs

        quiet_framework_logs()
    module, name = func.split(":")
    fn = getattr(importlib.import_module(module), name)
    try:
        result = fn(**kwargs, log=lambda m: _emit({"event": "log", "message": m}),
                    progress=lambda i, n: _emit({"event": "progress", "i": i, "n": n}))
        _emit({"event": "result", "value": result})
        return 0
    except KeyboardInterrupt:
        _emit({"event": "error", "kind": "interrupted", "message": "interrupted"})
        return 130
    except EdgekitError as exc:
        from .errors import is_interrupt

        if is_interrupt(exc):
            _emit({"event": "error", "kind": "interrupted", "message": "interrupted"})
            return 130
        _emit({"event": "error", "kind": exc.kind, "message": exc.message, "hint": exc.hint})
        return exc.exit_code
    except Exception as exc:  # a bug: the parent shows it as one (traceback with --debug)
        _emit({"event": "error", "kind": "internal", "message": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc()})
        return 1


if __name__ == "__main__":  # run as edgekit.isolation, not __main__: step() reads that module's pipe
    from edgekit.isolation import _child_main as child_main

    sys.exit(child_main(sys.argv[1]))
