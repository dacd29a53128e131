"""The Target contract and the part every agent-running target shares.

A target only has to say how to reach its "board": make a scratch folder, copy a file there,
run a command, remove the folder (`Board`). `AgentTarget` does the rest the same way for all
of them: stage the agent, the artifact and the inputs, run the agent, parse its JSON, and
remove the scratch folder whatever happened.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import tempfile
import time
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from edgekit import profiling
from edgekit.errors import CheckFailed, TargetUnreachable


class Target(Protocol):
    """Where an artifact runs and is measured. `name` is the TARGET string it reports under
    ("host", "ssh://pi@rpi", ...); `emulated` is True when timings are not a device's (qemu)."""

    name: str
    emulated: bool

    def check(self) -> dict:
        """Reach the target and list what it can run and what is missing (the `devices check`
        dict). Raises TargetUnreachable (exit 4) when it cannot be reached."""
        ...

    def profile(self, artifact, settings: profiling.ProfileSettings) -> dict:
        """Time ARTIFACT (a path) on the target per SETTINGS → the `profile` result dict (schema
        `$defs/profile`). Raises the errors of `AgentTarget.profile`."""
        ...

    def run(self, artifact, feeds: list[dict], threads: int | None = None) -> list[dict]:
        """Run ARTIFACT on each feed (name → batch-1 array) → one output dict per feed, in order."""
        ...


class Board(Protocol):
    """One connection to where the agent runs."""

    def mkdtemp(self) -> str:
        """Create a fresh scratch folder on the board; return its path there."""
        ...

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        """Copy the file LOCAL into REMOTE_DIR (as NAME, default its own name); return its path there."""
        ...

    def get(self, remote: str, local: Path) -> None:
        """Copy the board's file REMOTE to LOCAL on this machine."""
        ...

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """Run ARGV on the board (TIMEOUT in seconds) → (exit code, stdout, stderr)."""
        ...

    def rmtree(self, remote_dir: str) -> None:
        """Remove REMOTE_DIR and everything in it; a folder already gone is not an error."""
        ...


class AgentTarget:
    """A target that runs the device agent on a `Board`: `check`, `profile` and `run` are done
    here; a subclass provides `board()` (and, if needed, `agent_flags()` and `python`, the
    interpreter the agent runs with)."""

    name = "?"
    emulated = False
    python = "python3"
    local = False  # True for this machine: a missing runtime is edgekit's dependency (exit 3), not the board's

    @contextlib.contextmanager
    def board(self) -> Iterator[Board]:  # pragma: no cover - each target provides one
        """Context manager: an open connection to the board, closed on exit."""
        raise NotImplementedError

    # -- the agent, staged in a scratch folder that never outlives the call --------------------

    @contextlib.contextmanager
    def _scratch(self, b: Board) -> Iterator[str]:
        d = b.mkdtemp()
        self._removed = set()
        try:
            yield d
        finally:
            if d not in self._removed:
                b.rmtree(d)

    def _agent(self, b: Board, d: str, args: list[str], timeout: float, last: bool = False) -> dict:
        """Run the agent in D; with LAST the agent removes D itself after reporting (one round trip
        less on a remote board); otherwise, and whenever it did not report, the caller removes D."""
        agent = b.put(profiling.agent_bundle(), d, profiling.AGENT_NAME)
        argv = [self.python, agent, "--cleanup", d, *(["--remove-when-done"] if last else []),
                *self.agent_flags(), *args]
        code, out, err = b.exec(argv, timeout)
        if last and profiling.RESULT_PREFIX in out:
            self._removed.add(d)
        if code == 127 and ("not found" in err or "No such file" in err):
            raise TargetUnreachable(f"{self.name}: no Python at {self.python!r}.",
                                    "Install python3 on the target, or point edgekit at one "
                                    "(ssh://...?python=/path/to/python, or EDGEKIT_SSH_PYTHON).")
        return profiling.parse_agent_output(out, err, code, self.name, local=self.local)

    def agent_flags(self) -> list[str]:
        """Extra agent command-line flags this target always passes (none by default)."""
        return []

    def check(self) -> dict:
        """Run the agent's `probe` on the board → the `devices check` dict: python, numpy, per
        format whether its runtime is importable (`formats`), `missing` (package → install
        command), `device` (the board's description) and `check_s` (seconds the check took).

        Raises TargetUnreachable (exit 4) when the board cannot be reached, has no Python at
        `python`, or the agent ends without a result; CheckFailed (exit 1) when it was killed.
        """
        t0 = time.perf_counter()
        with self.board() as b, self._scratch(b) as d:
            payload = self._agent(b, d, ["probe"], timeout=120, last=True)
        probe = payload["result"]
        missing = {fmt: f["install"] for fmt, f in probe["formats"].items() if not f["available"]}
        if probe.get("numpy") is None:
            missing = {"numpy": f"{probe['python']} -m pip install numpy", **missing}
        return {
            "schema_version": profiling.SCHEMA_VERSION,
            "kind": "devices-check",
            "target": self.name,
            "emulated": self.emulated,
            "reachable": True,
            "python": probe["python"],
            "numpy": probe.get("numpy"),
            "formats": probe["formats"],
            "missing": missing,
            "device": probe["device"],
            "check_s": time.perf_counter() - t0,
        }

    def profile(self, artifact, settings: profiling.ProfileSettings) -> dict:
        """Time ARTIFACT on the board: stage the agent, the model (with its companion files) and
        the `--data` inputs in a scratch folder, run `profile` there, remove the folder.

        Args:
            artifact: path of a .tflite, .pte, .ptl or .onnx file.
            settings: runs, warmup, threads, data, ops, timeout_s (seconds).

        Returns the `profile` result dict (schema `$defs/profile`; `profiling.build_result`),
        plus `transport` {push_s, total_s} in seconds.
        Raises BadInput (exit 2) for a missing, corrupt or unknown artifact or bad data;
        TargetUnreachable (exit 4) for an unreachable board or a runtime missing there;
        MissingDependency (exit 3) for a delegate library missing there; CheckFailed (exit 1)
        when the model fails to load or run, or the agent is killed.
        """
        artifact = profiling.check_artifact(artifact)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="edgekit-in-") as local:
            inputs = profiling.write_inputs(artifact, settings.data, Path(local) / "inputs.npz")
            with self.board() as b, self._scratch(b) as d:
                t1 = time.perf_counter()
                model = self._put_model(b, artifact, d)
                feed = b.put(inputs, d) if inputs else None
                push_s = time.perf_counter() - t1
                payload = self._agent(b, d, settings.agent_args(model, feed), settings.timeout_s, last=True)
        transport = {"push_s": push_s, "total_s": time.perf_counter() - t0}
        return profiling.build_result(payload, target=self.name, artifact=artifact, emulated=self.emulated,
                                      transport=transport)

    @staticmethod
    def _put_model(b: Board, artifact: Path, d: str) -> str:
        for f in profiling.companion_files(artifact):
            b.put(f, d)
        return b.put(artifact, d)

    def run(self, artifact, feeds: list[dict], threads: int | None = None) -> list[dict]:
        """Run each feed on the target in one agent call (on-device parity).

        Args:
            artifact: path of a .tflite, .pte, .ptl or .onnx file.
            feeds: one dict per sample, input name → array of batch 1 in the artifact's own
                input dtype (raw: already quantized for int8 inputs); all with the same names.
            threads: CPU threads for the runtime (None: its default).

        Returns one dict per feed, in order: output name (the runtime's names, or output_0 ...)
        → raw array of batch 1. Raises as `profile` does.
        """
        artifact = profiling.check_artifact(artifact)
        names = list(feeds[0])
        with tempfile.TemporaryDirectory(prefix="edgekit-in-") as local:
            src = Path(local) / "inputs.npz"
            np.savez(src, **{n: np.concatenate([f[n] for f in feeds]) for n in names})
            with self.board() as b, self._scratch(b) as d:
                model = self._put_model(b, artifact, d)
                feed = b.put(src, d)
                out_remote = f"{d}/outputs.npz"
                args = ["run", model, "--inputs", feed, "--outputs", out_remote]
                if threads:
                    args += ["--threads", str(threads)]
                payload = self._agent(b, d, args, timeout=1800)
                dest = Path(local) / "outputs.npz"
                b.get(out_remote, dest)
            with np.load(dest) as z:
                arrays = {k: z[k] for k in z.files}
        n = len(feeds)
        order = [s["name"] for s in payload["result"]["outputs"]] or list(arrays)
        return [{k: arrays[k][i : i + 1] for k in order if k in arrays} for i in range(n)]


# -- on-device parity: a session whose outputs were computed on the target ----------------------

def _key(feed: dict) -> str:
    h = hashlib.sha1()
    for k in sorted(feed):
        a = np.ascontiguousarray(feed[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class OnTargetSession:
    """Looks like a runtime session to edgekit.parity, but every output comes from the target:
    all samples run there in one agent call, then `run` hands back the target's output for the
    feed it is given (looked up by content, so order does not matter)."""

    def __init__(self, local_session, target, artifact, raw_feeds: list[dict], threads=None):
        self.inputs, self.outputs = local_session.inputs, local_session.outputs
        self.target = target
        uniq = {}
        for f in raw_feeds:
            uniq.setdefault(_key(f), f)
        feeds = list(uniq.values())
        outs = target.run(artifact, feeds, threads=threads)
        self._table = {}
        for key, out in zip(uniq, outs):
            vals = list(out.values())
            if len(vals) != len(self.outputs):
                raise CheckFailed(f"{target.name} returned {len(vals)} output(s); the artifact has {len(self.outputs)}.")
            self._table[key] = {s.name: v.reshape(s.shape) if v.size == int(np.prod(s.shape)) else v
                                for s, v in zip(self.outputs, vals)}

    def run(self, feeds: dict) -> dict:
        """The target's outputs (name → array, reshaped to the output specs) for FEEDS (input
        name → array, cast to the input dtypes). CheckFailed (exit 1) if FEEDS was not among
        the feeds computed on the target."""
        raw = {s.name: np.asarray(feeds[s.name]).astype(s.dtype, copy=False) for s in self.inputs}
        out = self._table.get(_key(raw))
        if out is None:
            raise CheckFailed("A sample was not computed on the target (internal mismatch of feeds).",
                              "Report this with the command line.")
        return out


def quote(argv: list[str]) -> str:
    """ARGV as one POSIX shell command line, each word quoted with `shlex.quote`."""
    return " ".join(shlex.quote(a) for a in argv)
