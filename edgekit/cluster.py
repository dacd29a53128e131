"""`edgekit run --cluster ADDRESS`: the pipeline's builds and measurements as Ray tasks.

Ray schedules; edgekit only says what each task needs. A build needs one CPU (any node) and is
retried by Ray on another node when its worker dies. A measurement needs the device: the custom
resource "edgekit:<target>" of capacity 1 that `edgekit worker` advertises on the node the device
hangs off (so two measurements never share a device); it is never retried, since its device may
have gone with the worker, and is reported failed with the reason. Artifacts travel through Ray's
object store; the content-hash cache stays in the driver's output folder, so an unchanged build
is not rebuilt on any node. The report is the one a local run writes (edgekit.pipeline).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from .errors import BadInput, MissingDependency, TargetUnreachable
from .pipeline import (artifact_path, cache_key, cached_convert, cached_profile, conclude, new_entry,
                       profile_cache, store_profile)

INSTALL = "pip install 'edgekit-ml[ray]'"
BUILD_RETRIES = 3  # a build whose worker died runs again elsewhere (pure function of its inputs)
WAIT_S = 1.0  # how often the driver looks for devices that left the cluster while it waits
PROBE_S = 5.0  # how long a HOST:PORT may take to accept a TCP connection before it is unreachable
GCS_S = 10.0  # how long the GCS at HOST:PORT may take to say its cluster id
FORMS = "ray://HEAD:10001, HEAD:6379, auto or local"


def import_ray():
    """The `ray` module. Raises MissingDependency (exit 3) with the install line when absent."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("--cluster needs Ray, which is not installed.", f"Install it: {INSTALL}") from exc
    return ray


def init(address: str, targets: list[str] = ()):
    """Connect this process to the Ray cluster at ADDRESS ("ray://HEAD:10001" through Ray Client,
    "HEAD:6379" or "auto" as a driver on a cluster node, "local" for a throwaway cluster here that
    offers TARGETS). Returns the ray module. Raises MissingDependency (exit 3) without Ray,
    TargetUnreachable (exit 4) when nothing answers at ADDRESS."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address.strip()  # as parse_address and probe read it: " HEAD:6379 " is HEAD:6379 for Ray too
    probe(address)
    kw = dict(log_to_driver=False, logging_level="ERROR", configure_logging=True)
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False,  # "local": never join a cluster found here
                     resources={device_resource(t): 1 for t in targets}, **kw)
        else:
            ray.init(address=address, **kw)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        raise TargetUnreachable(f"No Ray cluster answered at {address}: {str(exc).splitlines()[0] if str(exc) else exc}",
                                "Start one (`ray start --head` on the head, `edgekit worker --head HEAD:6379 "
                                "--target ...` on each lab host), then pass ray://HEAD:10001, HEAD:6379 or auto.") from exc
    return ray


def parse_address(address: str, flag: str = "--cluster", client: bool = True) -> tuple[str, int] | None:
    """(host, port) of a Ray ADDRESS ("ray://HOST[:PORT]" when CLIENT, "HOST:PORT"), or None for
    "auto" and "local" (when CLIENT). Raises BadInput (exit 2) naming FLAG for anything else (empty,
    no host, a port that is not 1-65535), before Ray is asked (which would wait on it for minutes)."""
    text = (address or "").strip()
    if client and text in ("auto", "local"):
        return None
    if client and text.startswith("ray://"):
        host, sep, port = text[len("ray://"):].rpartition(":")
        if not sep:  # ray://HEAD: Ray Client's default port
            host, port = port, "10001"
    else:
        host, _, port = text.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    forms = FORMS if client else "HOST:PORT, e.g. 10.0.0.5:6379"
    if not host or "/" in host or any(c.isspace() for c in host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"{flag} {address!r} is not a Ray address (a host and a port from 1 to 65535).",
                       f"Pass {forms}.")
    return host, int(port)


def probe(address: str, flag: str = "--cluster", client: bool = True) -> None:
    """Check that something accepts TCP connections at ADDRESS's host and port within PROBE_S
    seconds (Ray itself retries a silent address for minutes). Raises BadInput for a malformed
    ADDRESS (see parse_address; FLAG, CLIENT as there) and TargetUnreachable (exit 4) when nothing
    listens there."""
    hp = parse_address(address, flag, client)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=PROBE_S).close()
    except (OSError, UnicodeError) as exc:
        raise TargetUnreachable(f"No Ray cluster answered at {address}: nothing accepted a connection at "
                                f"{hp[0]}:{hp[1]} within {PROBE_S:g} s ({exc.strerror or exc}).",
                                ("Start one (`ray start --head` on the head, `edgekit worker --head HEAD:6379 "
                                 "--target ...` on each lab host), then pass ray://HEAD:10001, HEAD:6379 or auto; "
                                 if client else "Start the head first (`ray start --head --port 6379` there); ")
                                + "check the host name, the port and any firewall between.") from exc
    if not (client and address.strip().startswith("ray://")):  # Ray Client speaks another protocol
        _gcs_answers(address, *hp)


_ASK_GCS = """
import sys, grpc
from ray.core.generated import gcs_service_pb2 as m, gcs_service_pb2_grpc as g
with grpc.insecure_channel(sys.argv[1]) as c:
    try:
        g.NodeInfoGcsServiceStub(c).GetClusterId(m.GetClusterIdRequest(), timeout=float(sys.argv[2]))
    except grpc.RpcError as e:
        sys.exit(e.code().name)
"""


def _gcs_answers(address: str, host: str, port: int) -> None:
    """Ask the Ray GCS at HOST:PORT (of ADDRESS) for its cluster id within GCS_S seconds: a port
    that accepts connections but is no GCS (an ssh daemon, the Ray Client port) made ray.init retry
    for minutes. Raises TargetUnreachable (exit 4) when it does not answer. Asked from a child
    process: grpc imported in this one broke a later Ray Client connection to the same cluster."""
    import subprocess
    import sys

    try:
        r = subprocess.run([sys.executable, "-c", _ASK_GCS, f"{host}:{port}", str(GCS_S)], capture_output=True,
                           text=True, timeout=GCS_S + 20)
    except subprocess.TimeoutExpired:
        r = subprocess.CompletedProcess([], 1, "", "DEADLINE_EXCEEDED")
    if r.returncode and "ModuleNotFoundError" not in r.stderr and "ImportError" not in r.stderr:
        raise TargetUnreachable(
            f"No Ray cluster answered at {address}: {host}:{port} accepts connections, but no Ray GCS "
            f"answered there within {GCS_S:g} s ({(r.stderr.strip().splitlines() or ['no answer'])[-1]}).",
            "Pass the head's GCS port (`ray start --head --port 6379` prints it) as HEAD:6379, or the Ray "
            "Client port as ray://HEAD:10001.")


def device_resource(target: str) -> str:
    """The Ray custom resource of TARGET's device (see cluster_tasks.device_resource)."""
    from .cluster_tasks import device_resource as name

    return name(target)


def offered(ray) -> list[dict]:
    """The devices the live nodes of the connected cluster offer: [{target, node, ip}], one per
    (node, device), in node order."""
    from .cluster_tasks import DEVICE_PREFIX

    out = []
    for n in ray.nodes():
        if n.get("Alive"):
            for res in sorted(n.get("Resources", {})):
                if res.startswith(DEVICE_PREFIX):
                    out.append({"target": res[len(DEVICE_PREFIX):], "node": n["NodeID"], "ip": n["NodeManagerAddress"]})
    return out


def connect(address: str, targets: list[str]) -> "Session":
    """Join the cluster at ADDRESS (see `init`) and check that some node offers every one of
    TARGETS. Raises TargetUnreachable (exit 4) naming the targets no worker offers (before
    anything runs), and what init raises."""
    ray = init(address, targets)
    have = {d["target"] for d in offered(ray)}
    missing = [t for t in targets if t.strip() not in have]
    if missing:
        raise TargetUnreachable(
            f"No worker of the Ray cluster at {address} offers {', '.join(missing)}"
            + (f" (offered: {', '.join(sorted(have))})." if have else " (no worker offers any device)."),
            "On the host the device is attached to, run: edgekit worker --head HEAD:6379 "
            + " ".join(f"--target {t}" for t in missing))
    return Session(ray)


class Session:
    """A connection to a Ray cluster that runs pipelines (made by `connect`)."""

    def __init__(self, ray):
        """RAY: the initialized ray module."""
        self.ray = ray

    def run_builds(self, p, out_dir: Path, versions: dict, force: bool, log, on_build, entries: list) -> None:
        """Run every build of pipeline P on the cluster; append each finished report entry to
        ENTRIES in P's build order (an interrupted run keeps the finished ones there, and Ray's
        pending tasks are cancelled). OUT_DIR, VERSIONS, FORCE, LOG, ON_BUILD: as pipeline.run."""
        from . import cluster_tasks as tasks

        ray = self.ray
        build_fn = ray.remote(tasks.build_task).options(num_cpus=1, num_returns=2, max_retries=BUILD_RETRIES,
                                                        retry_exceptions=False)
        measure_fn = ray.remote(tasks.measure_task)
        done: dict[str, dict] = {}
        pending: dict = {}  # ObjectRef → (kind, build, target)
        state: dict[str, dict] = {}
        inputs_ref = None
        data_ref = ray.put(tasks.pack([tasks.file_part(p.data)] if tasks.file_part(p.data) else []))
        settings = {"runs": p.runs, "warmup": p.warmup, "threads": p.threads}

        def measure(b, files_ref):
            st = state[b.name]
            for i, target in enumerate(p.targets):
                cache, key = profile_cache(p, st["artifact"], target)
                saved = None if force else cached_profile(cache, key, st["entry"]["notes"])
                if saved is not None:
                    st["profiles"][i] = saved
                    continue
                log(f"profiling {st['artifact'].name} on {target}")
                res = {device_resource(target): 1}
                ref = measure_fn.options(num_cpus=1 if _is_host(target) else 0, resources=res, max_retries=0).remote(
                    files_ref, st["artifact"].name, target, settings, data_ref)
                pending[ref] = ("measure", b, i, (cache, key))
            _maybe_done(b)

        def _maybe_done(b):
            st = state[b.name]
            if st["entry"]["status"] == "failed" or all(x is not None for x in st["profiles"]):
                if st["entry"]["status"] != "failed":
                    st["entry"]["profiles"] = st["profiles"]
                    conclude(st["entry"], {**p.budgets, **b.budgets}, p.targets)
                done[b.name] = st["entry"]
                on_build(b.name, st["entry"]["status"])

        try:
            for b in p.builds:
                on_build(b.name, "start")
                artifact = artifact_path(p, b, out_dir)
                artifact.parent.mkdir(exist_ok=True)
                key = cache_key(p, b, versions)
                entry = new_entry(b, artifact, key)
                state[b.name] = {"artifact": artifact, "entry": entry, "profiles": [None] * len(p.targets)}
                conv = None if force else cached_convert(artifact, key, entry["notes"])
                if conv is not None:
                    entry.update(status="cached", convert=conv)
                    log(f"{b.name}: unchanged, reusing {artifact.name}")
                    files = {f.name: f.read_bytes() for f in artifact.parent.iterdir() if f.is_file()
                             and not f.name.startswith("profile-")}
                    measure(b, ray.put(files))
                    continue
                if inputs_ref is None:
                    inputs_ref = ray.put(tasks.pack(tasks.pipeline_inputs(p)))
                log(f"{b.name}: building {b.to} ({b.quantize}) on the cluster")
                meta_ref, files_ref = build_fn.remote(p, b, inputs_ref, artifact.name, key, versions)
                pending[meta_ref] = ("build", b, files_ref, None)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    kind, b, extra, cache = pending.pop(ref)
                    if kind == "build":
                        self._built(ref, b, extra, state[b.name], out_dir)
                        if state[b.name]["entry"]["status"] == "failed":
                            _maybe_done(b)
                        else:
                            measure(b, extra)
                    else:
                        result = self._measured(ref, p.targets[extra], state[b.name]["artifact"].parent)
                        if "error" not in result:
                            store_profile(*cache, result)
                        state[b.name]["profiles"][extra] = result
                        _maybe_done(b)
                if not ready:
                    self._fail_orphans(pending, p.targets, state, _maybe_done)
        except BaseException:
            # not a task whose reply has come back: cancelling one whose completion is being
            # processed races inside Ray (2.60 aborts the driver: task_manager.cc "Tried to
            # complete task that was not pending"; ray-project/ray PR #54798 fixed a variant)
            try:
                finished = set(ray.wait(list(pending), num_returns=len(pending), timeout=0)[0]) if pending else set()
            except Exception:  # noqa: BLE001 - best effort while interrupted
                finished = set()
            for ref in pending:
                if ref not in finished:
                    ray.cancel(ref, force=True)
            raise
        finally:
            entries.extend(done[b.name] for b in p.builds if b.name in done)

    def _built(self, ref, b, files_ref, st: dict, out_dir: Path) -> None:
        """A build task came back: write its files into OUT_DIR/<build>/ and fill the entry ST."""
        from .artifacts import atomic_output

        ray, entry = self.ray, st["entry"]
        try:
            meta = ray.get(ref)
            files = ray.get(files_ref) if "error" not in meta else {}
        except ray.exceptions.RayError as exc:
            entry.update(status="failed", passed=False, error={
                "message": f"{b.name}: the build crashed on the cluster: {_reason(exc)}", "hint":
                "Run it locally (without --cluster, with --debug) to see the whole error.", "exit_code": 1})
            return
        folder = st["artifact"].parent
        if "error" in meta:
            entry.update(status="failed", passed=False, error=meta["error"], node=meta["node"])
            return
        for name, blob in files.items():
            if name.endswith(".json"):  # the manifest names the worker's scratch paths: name ours
                blob = _relocate(blob.decode(), meta["paths"], folder).encode()
            with atomic_output(folder / name) as tmp:
                tmp.write_bytes(blob)
        text = _relocate(json.dumps(meta["convert"], default=str), meta["paths"], folder)
        entry.update(convert=json.loads(text), node=meta["node"])

    def _measured(self, ref, target: str, folder: Path) -> dict:
        """A measurement task's result (its scratch paths named as FOLDER, the build folder here),
        or the report's error object when its worker died."""
        ray = self.ray
        try:
            return json.loads(json.dumps(ray.get(ref)).replace("@BUILD@", json.dumps(str(folder))[1:-1]))
        except ray.exceptions.RayError as exc:
            return {"target": target, "error": {
                "message": f"{target}: the measurement did not finish: {_reason(exc)}",
                "hint": "Check the worker that offers this device (`edgekit devices --cluster ...`) and run again.",
                "exit_code": 4}}

    def _fail_orphans(self, pending: dict, targets: list[str], state: dict, maybe_done) -> None:
        """Mark failed (and cancel) the waiting measurements whose device no live node offers any
        more: its worker left the cluster, and Ray would wait for it forever."""
        have = {d["target"] for d in offered(self.ray)}
        for ref, (kind, b, i, _) in list(pending.items()):
            if kind == "measure" and targets[i].strip() not in have:
                self.ray.cancel(ref, force=True)
                del pending[ref]
                state[b.name]["profiles"][i] = {"target": targets[i], "error": {
                    "message": f"{targets[i]}: no worker offers this device any more (its worker left the "
                               "cluster before measuring it).",
                    "hint": "Restart `edgekit worker` on the host the device is attached to and run again.",
                    "exit_code": 4}}
                maybe_done(b)


def _relocate(text: str, paths: dict, folder: Path) -> str:
    """JSON TEXT with the worker's paths (PATHS: {path there: original path, or "@BUILD@" for
    the build folder}) replaced by this machine's (FOLDER for the build folder)."""
    for there, here in paths.items():
        text = text.replace(json.dumps(there)[1:-1], json.dumps(str(folder) if here == "@BUILD@" else here)[1:-1])
    return text


def _is_host(target: str) -> bool:
    """Whether TARGET is the worker's own CPU (a host measurement also needs a CPU there)."""
    from .targets import kind_of

    k = kind_of(target)
    return k is not None and k.scheme == "host"


def _reason(exc: BaseException) -> str:
    """The first line of a Ray error, as a reason in the report."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def devices(address: str) -> dict:
    """`edgekit devices --cluster ADDRESS`: {"kind": "devices-cluster", "cluster", "devices":
    [{target, node, ip}]}. Raises what `init` raises (exit 3 without Ray, 4 unreachable)."""
    ray = init(address)
    t0 = time.perf_counter()
    return {"schema_version": 1, "kind": "devices-cluster", "cluster": address, "devices": offered(ray),
            "nodes": sum(1 for n in ray.nodes() if n.get("Alive")), "check_s": time.perf_counter() - t0}

