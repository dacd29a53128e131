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
    name: str
    emulated: bool

    def check(self) -> dict: ...

    def profile(self, artifact, settings: profiling.ProfileSettings) -> dict: ...

    def run(self, artifact, feeds: list[dict], threads: int | None = None) -> list[dict]: ...


class Board(Protocol):
    """One connection to where the agent runs."""

    def mkdtemp(self) -> str: ...

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str: ...

    def get(self, remote: str, local: Path) -> None: ...

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]: ...

    def rmtree(self, remote_dir: str) -> None: ...


class AgentTarget:
    name = "?"
    emulated = False
    python = "python3"

    @contextlib.contextmanager
    def board(self) -> Iterator[Board]:  # pragma: no cover - each target provides one
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
        return profiling.parse_agent_output(out, err, code, self.name)

    def agent_flags(self) -> list[str]:
        return []

    def check(self) -> dict:
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
        """Run each feed (raw tensors, batch 1, keyed by input name) on the target; raw outputs
        in order, keyed by output position name (output_0 ...) or the runtime's names."""
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
        raw = {s.name: np.asarray(feeds[s.name]).astype(s.dtype, copy=False) for s in self.inputs}
        out = self._table.get(_key(raw))
        if out is None:
            raise CheckFailed("A sample was not computed on the target (internal mismatch of feeds).",
                              "Report this with the command line.")
        return out


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
