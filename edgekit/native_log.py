"""Capture what native code (TensorFlow's converter, XNNPACK, ExecuTorch) prints to file
descriptor 2, so that the terminal shows edgekit's messages and errors can quote the real cause."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "executorch", "litert_torch", "absl")


# Top-level packages whose first import prints native start-up lines on fd 2 that no environment
# variable silences (TensorFlow 2.21: "WARNING: All log messages before absl::InitializeLog()" and
# the oneDNN notice; TF_ENABLE_ONEDNN_OPTS=0 would also change TF's CPU kernels).
NOISY_IMPORTS = ("tensorflow", "keras", "tf_keras", "ai_edge_litert", "litert_torch", "ai_edge_quantizer")


class _QuietImporter:
    """A meta-path finder that runs the first import of a NOISY_IMPORTS package with fd 2
    captured; the package itself is found and loaded by the normal machinery."""

    def find_spec(self, name, path=None, target=None):
        if name not in NOISY_IMPORTS:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        log = NativeLog()
        try:
            with capture_native_stderr() as log:
                self.loader.exec_module(module)
        except BaseException:
            if log.text:  # an import that failed keeps its diagnostics
                sys.stderr.write(log.text)
            raise

    def __getattr__(self, name):  # get_resource_reader, is_package ... from the real loader
        return getattr(self.loader, name)


QUIET_ENV = ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL", "GLOG_minloglevel")  # 2 = errors only
_SET_BY_US: set[str] = set()


def quiet_framework_logs() -> None:
    """Keep the frameworks' start-up chatter off the terminal (everything but --debug): TensorFlow's
    C++ log levels through the environment (inherited by child processes), the native lines
    printed while TensorFlow & co. are first imported (captured, see NOISY_IMPORTS), and the
    import-time notices of the PyTorch stack (torchao's optional CUDA kernels, torch's pytree
    deprecations)."""
    import logging

    if not any(isinstance(f, _QuietImporter) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImporter())

    for var in QUIET_ENV:
        if var not in os.environ:  # a level the user set stays theirs
            os.environ[var] = "2"
            _SET_BY_US.add(var)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def loud_framework_logs() -> None:
    """Undo `quiet_framework_logs` (for a --debug seen after the subcommand, once the root had
    quietened the frameworks): the import capture goes, the log-level variables edgekit set are
    removed (read by TensorFlow when it is first imported, which comes later), loggers back to
    their default level."""
    import logging

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietImporter)]
    for var in _SET_BY_US:
        os.environ.pop(var, None)
    _SET_BY_US.clear()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


class NativeLog:
    """What native code wrote to fd 2 inside `capture_native_stderr` (`text`, set on exit)."""

    text = ""


@contextlib.contextmanager
def capture_native_stderr(enabled: bool = True):
    """Redirect fd 2 to a temporary file for the block; `log.text` holds what was written.

    Disabled (or when fd 2 is not a real descriptor) it yields an empty log and changes nothing.
    """
    log = NativeLog()
    if not enabled:
        yield log
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:
        yield log
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield log
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            log.text = tmp.read().decode("utf-8", "replace")


def first_error_line(msg: str) -> str:
    """The line of a long native diagnostic that says what went wrong (the first with 'error')."""
    lines = [l.strip() for l in msg.strip().splitlines() if l.strip()]
    for line in lines:
        if "error" in line.lower():
            return line[:500]
    return (lines[0] if lines else msg)[:500]
