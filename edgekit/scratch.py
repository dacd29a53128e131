"""A private temporary folder for one edgekit command, removed on every exit path.

Kept apart from edgekit.isolation (subprocess, threading) because the CLI enters it on every
command, `edgekit --help` included."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def private_tmpdir(prefix: str = "edgekit-run-"):
    """Point `tempfile` and TMPDIR (inherited by child processes) at a fresh folder for the
    block and remove it afterwards, whatever happened: what frameworks leave in the temp dir
    (SavedModel exports, autograph's generated files, ETDumps) goes with it. Yields its path."""
    folder = tempfile.mkdtemp(prefix=prefix)
    saved_env, saved_module = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = folder, folder
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_module
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)
