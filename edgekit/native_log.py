"""Capture what native code (TensorFlow's converter, XNNPACK, ExecuTorch) prints to file
descriptor 2, so that the terminal shows edgekit's messages and errors can quote the real cause."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "executorch", "litert_torch", "absl")


def quiet_framework_logs() -> None:
    """Keep the frameworks' start-up chatter off the terminal (everything but --debug): TensorFlow's
    C++ log levels through the environment (inherited by child processes), and the import-time
    notices of the PyTorch stack (torchao's optional CUDA kernels, torch's pytree deprecations)."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GLOG_minloglevel", "2")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


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
