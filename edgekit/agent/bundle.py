"""Build the device agent as one zipapp from edgekit's own modules.

The agent a board runs is not a copy of the runtime code but the same files host parity and
host profiling import: `edgekit/runtimes/*`, `edgekit/agent/*` and the device-safe core they
stand on (errors, specs, artifacts, integrity, native_log). They are packed with `zipapp` into
`edgekit_agent.pyz` (the `zipapp` layout: a `__main__.py` at the root), which
`python3 edgekit_agent.pyz ...` runs anywhere with numpy and a runtime. Its `edgekit/__init__.py` is a stub, so nothing of the host-only package (CLI,
converters, frameworks) is needed there.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # the edgekit package folder
NAME = "edgekit_agent.pyz"
CORE = ("_version.py", "errors.py", "specs.py", "artifacts.py", "integrity.py", "native_log.py")
PACKAGES = ("runtimes", "agent")
HOST_ONLY = {"agent/bundle.py"}
STUB = '"""edgekit device agent bundle: the runtime layer and the agent, nothing host-only."""\n'
MAIN = "import sys\nfrom edgekit.agent.main import main\nsys.exit(main())\n"


def bundle_files() -> dict[str, bytes]:
    """{path inside the zipapp: content} for every module the agent runs."""
    files = {"edgekit/__init__.py": STUB.encode()}
    for name in CORE:
        files[f"edgekit/{name}"] = (PACKAGE / name).read_bytes()
    for pkg in PACKAGES:
        for f in sorted((PACKAGE / pkg).glob("*.py")):
            rel = f"{pkg}/{f.name}"
            if rel not in HOST_ONLY:
                files[f"edgekit/{rel}"] = f.read_bytes()
    return files


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgekit" / "agent"


def agent_bundle() -> Path:
    """The zipapp for the current sources: built once per content hash into
    ~/.cache/edgekit/agent/<hash>/edgekit_agent.pyz (XDG_CACHE_HOME honoured), written to a
    temporary name and renamed, so concurrent edgekit processes never see a partial file.

    Returns its path. Raises OSError only when neither the cache nor the temp dir is writable."""
    files = bundle_files()
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    key = digest.hexdigest()[:16]
    for base in (_cache_dir(), Path(tempfile.gettempdir()) / f"edgekit-agent-{os.getuid()}"):
        dest = base / key / NAME
        if dest.is_file():
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".edgekit_agent-", suffix=".partial", dir=dest.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(_zip(files))
            os.replace(tmp, dest)
            return dest
        except OSError:
            continue
    raise OSError("No writable folder for the device agent bundle (~/.cache/edgekit or the temp dir).")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")  # as zipapp writes it: zip offsets count from here
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__main__.py", MAIN)
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[path])
    return buf.getvalue()
