"""One error hierarchy. Every error says what was wrong and what to do; the CLI prints it
without a traceback and exits with its code (documented in the README)."""

OK = 0
CHECK_FAILED = 1  # a parity check or a budget failed
BAD_INPUT = 2  # usage or bad input (paths, formats, shapes, data)
ENVIRONMENT = 3  # a dependency or tool is missing
UNREACHABLE = 4  # a device or target cannot be reached
INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class EdgekitError(Exception):
    """Base of every error edgekit raises on purpose: `message` says what was wrong, `hint` what
    to do. `exit_code` is the CLI's exit status; `kind` names the class in JSON (the device
    agent's error payload, `--json` error objects)."""

    exit_code = BAD_INPUT
    kind = "error"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class BadInput(EdgekitError):
    """The user gave something edgekit cannot use: a path, a model, a shape, data (exit 2)."""

    kind = "bad_input"


class ShapeNeeded(BadInput):
    """A model input has no fixed shape and none was given (exit 2); callers may retry with the
    shapes of the user's data."""


class DataRejected(BadInput):
    """The user's data makes the reference model itself fail (token ids out of range ...) (exit 2):
    bad input, not a verdict on the artifact."""


class UnsupportedModel(BadInput):
    """The model uses something the chosen converter/runtime cannot express."""


class MissingDependency(EdgekitError):
    """A Python package or tool edgekit needs is not installed (exit 3)."""

    exit_code = ENVIRONMENT
    kind = "missing_dependency"


class MissingLibrary(MissingDependency):
    """An external delegate's shared library (libedgetpu.so.1 for Coral) cannot be loaded (exit 3)."""

    kind = "missing_library"


class TargetUnreachable(EdgekitError):
    """A device or target cannot be reached, or lacks what edgekit needs to run there (exit 4)."""

    exit_code = UNREACHABLE
    kind = "unreachable"


class DeviceUnavailable(TargetUnreachable):
    """A delegate loaded but found no accelerator to run on (Coral: none plugged in) (exit 4)."""

    kind = "device_unavailable"


class CheckFailed(EdgekitError):
    """The artifact was built but does not hold up: parity, load-and-run, a budget (exit 1)."""

    exit_code = CHECK_FAILED
    kind = "failed"


# Ctrl-C that lands inside native code (TensorFlow's pybind11 layer) can surface as a
# RuntimeError, which a converter then wraps as a bad-model error. The handler remembers the
# keypress, so callers can tell a real failure from an interrupted one. SIGTERM (what CI runners
# and `timeout` send) and SIGHUP (the terminal closed) are handled the same way.
_ctrl_c_seen = False
_interrupt_signal = None


def note_interrupt(signum: int) -> None:
    """Record that signal SIGNUM asked edgekit to stop (for is_interrupt and the exit code)."""
    global _ctrl_c_seen, _interrupt_signal
    _ctrl_c_seen = True
    _interrupt_signal = signum


def watch_ctrl_c() -> None:
    """Install handlers (main thread only) for SIGINT, SIGTERM and SIGHUP: record the signal and
    raise KeyboardInterrupt, so every cleanup path (temporary files, partial reports) runs as on
    Ctrl-C."""
    import signal
    import threading

    global _ctrl_c_seen, _interrupt_signal
    if threading.current_thread() is not threading.main_thread():
        return
    _ctrl_c_seen, _interrupt_signal = False, None  # a new command: an earlier run's signal is not this one's

    def on_signal(signum, frame):
        note_interrupt(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def interrupt_exit_code() -> int:
    """128 + the signal that stopped edgekit, as shells report it: 130 for Ctrl-C (SIGINT),
    143 for SIGTERM, 129 for SIGHUP."""
    return 128 + _interrupt_signal if _interrupt_signal else INTERRUPTED


def is_interrupt(exc: BaseException) -> bool:
    """True for KeyboardInterrupt, and for any error raised after the user pressed Ctrl-C."""
    return isinstance(exc, KeyboardInterrupt) or _ctrl_c_seen


def raise_if_ctrl_c_seen() -> None:
    """Native code can swallow the KeyboardInterrupt (TFLite calibration carries on with fewer
    samples) or reshape it into another error: a Ctrl-C the user pressed still stops the work."""
    if _ctrl_c_seen:
        raise KeyboardInterrupt


DISTRIBUTION = "edgekit-ml"  # the name on the package index; `edgekit` there is an unrelated project
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def install_line(extra: str) -> str:
    """The pip command that installs edgekit's EXTRA (tf, torch, onnx, ssh, android, all); for
    torch with PyTorch's CPU wheel index, without which pip takes a multi-GB CUDA build."""
    line = f"pip install '{DISTRIBUTION}[{extra}]'"
    return line + f" --extra-index-url {CPU_TORCH_INDEX}" if extra in ("torch", "all") else line


def require(module: str, extra: str, what: str | None = None):
    """Import an optional framework on first use, or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{what or module} is needed here but could not be imported ({exc}).",
            f"Install it with: {install_line(extra)}",
        ) from exc


def error_for_kind(kind: str, message: str, hint: str | None = None) -> EdgekitError:
    """Rebuild an error from its JSON `kind` (another process's payload) with the same class and
    exit code; an unknown kind becomes CheckFailed (exit 1)."""
    classes = {}
    todo = [EdgekitError]
    while todo:
        cls = todo.pop()
        if "kind" in vars(cls):  # a subclass that does not name its own kind is not its parent's
            classes.setdefault(cls.kind, cls)
        todo.extend(cls.__subclasses__())
    return classes.get(kind, CheckFailed)(message, hint)
