"""Nothing left behind on a board: the agent removes its scratch folder when it is signalled or
when its controlling connection drops, even when the host cannot come back to clean up."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading


def arm_cleanup(folder: str, watch_stdin: bool):
    """Remove FOLDER on SIGHUP/SIGTERM/SIGPIPE/SIGINT (then exit 128+signal) and, with
    WATCH_STDIN, when stdin reaches EOF (the SSH/adb connection dropped; exit 130).

    Not at a normal exit: the caller fetches outputs, then removes the folder itself.
    Returns the cleanup function (idempotent)."""
    done = threading.Event()
    lock = threading.RLock()

    def cleanup(*_):
        # a lock, not only the flag: a signal arriving while the stdin watcher is removing the
        # folder must wait for it, or its os._exit cuts the removal short
        with lock:
            if not done.is_set():
                shutil.rmtree(folder, ignore_errors=True)
                done.set()

    def die(signum, _frame):
        cleanup()
        os._exit(128 + signum)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE, signal.SIGINT):
        with contextlib.suppress(Exception):
            signal.signal(sig, die)
    if watch_stdin:
        def watch():
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            cleanup()  # the connection dropped: nobody will read the result
            os._exit(130)

        threading.Thread(target=watch, daemon=True).start()
    return cleanup
