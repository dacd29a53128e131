"""`edgekit run --cluster` on a real Ray cluster (issue 15): a head and two `edgekit worker`
processes on 127.0.0.1, one offering this machine (`host`), the other a real loopback sshd board.
Nothing is mocked. Each Ray process runs in its own process group (start_new_session) and only
those groups are stopped: never `ray stop`, which would end every Ray process on the machine.
Every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import edgekit_cmd
from tests.pipeline.test_run import schema_validator
from tests.targets.conftest import Sshd, _free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits"
STORE = str(80 * 1024 * 1024)  # bytes of object store per Ray process: artifacts here are < 1 MB
RUN_TIMEOUT = 600

pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh dev (the [ray] extra)")


def _ray_start(*args: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*args], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop PROC's process group (only ours): SIGTERM lets `ray start --block` stop its raylet and
    GCS; whatever of the group is left after that (or after 8 s) is killed."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(8)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def _edgekit(*args, env: dict, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([*edgekit_cmd(), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


class Cluster:
    """A Ray head (0 CPUs: builds go to the workers) and two `edgekit worker` processes with one
    CPU each: HOST_WORKER offers `host`, BOARD_WORKER the sshd board BOARD."""

    def __init__(self, root: Path, sshd: Sshd):
        self.port, client_port = _free_port(), _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_address = f"ray://127.0.0.1:{client_port}"  # Ray Client, as from outside the cluster
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line() + "\n")
        (home / ".ssh" / "config").write_text(
            f"Host board\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
            f"  IdentityFile {sshd.user_key}\n  UserKnownHostsFile {home / '.ssh' / 'known_hosts'}\n")
        # the board's Python from EDGEKIT_SSH_PYTHON (the worker's device name stays "ssh://board")
        self.board = "ssh://board"
        # the head notices a dead worker within seconds (Ray's default waits ~30 s)
        self.env = dict(os.environ, HOME=str(home), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                        RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3",
                        RAY_health_check_initial_delay_ms="1000",
                        RAY_raylet_start_wait_time_s="120")
        self.env.pop("SSH_AUTH_SOCK", None), self.env.pop("RAY_ADDRESS", None)
        self.env["EDGEKIT_SSH_PYTHON"] = sys.executable
        ray_bin = str(Path(sys.executable).parent / "ray")
        self.head = _ray_start(ray_bin, "start", "--head", "--block", "--port", str(self.port), "--num-cpus", "0",
                               "--include-dashboard", "false", "--object-store-memory", STORE,
                               "--disable-usage-stats", "--ray-client-server-port", str(client_port),
                               env=self.env, log=root / "head.log")
        self.root = root
        self.host_worker = self.board_worker = None
        try:
            self._wait_for_port(self.port)
        except BaseException:
            self.stop()
            raise  # a worker started before the head's GCS listens never registers
        worker = [*edgekit_cmd(), "worker", "--head", self.address, "--num-cpus", "1", "--object-store-memory", STORE]
        try:  # one after the other: two raylets registering at once on 2 busy cores can time out
            self.host_worker = _ray_start(*worker, "--target", "host", env=self.env, log=root / "worker-host.log")
            self._wait_for({"host"})
            self.board_worker = _ray_start(*worker, "--target", self.board, env=self.env, log=root / "worker-board.log")
            self.devices = self._wait_for({"host", self.board})
        except BaseException:
            self.stop()
            raise

    def _wait_for_port(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if self.head.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError("the Ray head did not start: " + (self.root / "head.log").read_text()[-3000:])

    def _wait_for(self, targets: set, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = _edgekit("devices", "--cluster", self.address, "--json", env=self.env, timeout=60)
            if r.returncode == 0:
                devices = {d["target"]: d["node"] for d in json.loads(r.stdout)["devices"]}
                if targets <= set(devices):
                    return devices
            time.sleep(1)
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.root.glob("*.log")))
        raise RuntimeError(f"the cluster did not offer {targets} within {timeout} s:\n{logs}")

    def stop(self):
        for proc in (self.board_worker, self.host_worker, self.head):
            if proc is not None:
                _stop(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    (root / "sshd").mkdir()
    sshd = Sshd(root / "sshd")
    c = Cluster(root, sshd)
    try:
        yield c
    finally:
        c.stop()
        sshd.stop()


def _project(tmp_path: Path, targets: list[str]) -> Path:
    """The bundled digits example with 4 builds × TARGETS; one build holds a size budget it
    cannot meet, so the verdicts differ between builds."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("edgekit-out", "__pycache__"))
    spec = yaml.safe_load((EXAMPLE / "edgekit.yaml").read_text())
    spec.update(targets=targets, runs=10, warmup=2, builds=[
        {"name": "fp32", "to": "tflite", "budgets": {"size_mb": 0.05}},
        {"name": "fp16", "to": "tflite", "quantize": "fp16"},
        {"name": "dyn8", "to": "tflite", "quantize": "dynamic-int8"},
        {"name": "int8", "to": "tflite", "quantize": "int8", "io_dtype": "int8"}])
    spec["budgets"].update(latency_p90_ms=1000, min_delegated_fraction=0.0)
    (dest / "edgekit.yaml").write_text(yaml.safe_dump(spec))
    return dest / "edgekit.yaml"


def _outcomes(report: dict) -> list:
    return [(b["name"], b["status"], b["passed"], sorted((v["budget"], v.get("target", ""), v["passed"]) for v in b["budgets"]),
             [p["target"] for p in b["profiles"]], ["error" in p for p in b["profiles"]]) for b in report["builds"]]


@pytest.mark.slow
def test_cluster_report_equals_the_local_one_and_a_second_run_rebuilds_nothing(cluster, tmp_path):
    """4 builds × 2 targets: the same builds, verdicts and budget outcomes as a local run; each
    measurement ran on the node that offers its device; a second cluster run rebuilds nothing."""
    pipeline = _project(tmp_path, ["host", cluster.board])
    local = _edgekit("run", pipeline, "-o", tmp_path / "local", "--json", env=cluster.env)
    assert local.returncode == 1, local.stderr  # fp32 misses its size budget
    on_cluster = _edgekit("run", pipeline, "-o", tmp_path / "cluster", "--cluster", cluster.address, "--json", env=cluster.env)
    assert on_cluster.returncode == 1, on_cluster.stderr
    assert "Traceback" not in on_cluster.stderr and "INFO" not in on_cluster.stderr, on_cluster.stderr
    lr, cr = json.loads(local.stdout), json.loads(on_cluster.stdout)
    assert _outcomes(cr) == _outcomes(lr)
    assert [b["passed"] for b in cr["builds"]] == [False, True, True, True], [
        (b["name"], [v for v in b["budgets"] if not v["passed"]], [p.get("error") for p in b["profiles"]]) for b in cr["builds"]]
    assert json.loads((tmp_path / "cluster" / "report.json").read_text())["builds"] == cr["builds"]
    schema_validator().validate(cr)  # the same schema as a local run's report
    workers = {cluster.devices["host"], cluster.devices[cluster.board]}
    assert len(workers) == 2  # two nodes, each offering its own device
    for b in cr["builds"]:
        assert b["status"] == "built" and b["node"]["id"] in workers  # built on a worker, not the head
        assert Path(b["artifact"]).is_file() and Path(b["convert"]["artifact"]) == Path(b["artifact"])
        for prof in b["profiles"]:
            assert prof["node"]["id"] == cluster.devices[prof["target"]], (prof["target"], prof["node"])
    manifest = (tmp_path / "cluster" / "fp32" / "digits.tflite.json").read_text()
    assert "edgekit-build-" not in manifest  # the worker's scratch paths are not left in the manifest

    again = _edgekit("run", pipeline, "-o", tmp_path / "cluster", "--cluster", cluster.address, "--json", env=cluster.env)
    assert again.returncode == 1, again.stderr
    ar = json.loads(again.stdout)
    assert [b["status"] for b in ar["builds"]] == ["cached"] * 4
    assert all(p.get("cached") for b in ar["builds"] for p in b["profiles"])
    assert "building" not in again.stderr and _outcomes(ar) == [(n, "cached", *rest) for n, _, *rest in _outcomes(cr)]


def test_a_target_no_worker_offers_is_refused_before_anything_runs(cluster, tmp_path):
    pipeline = _project(tmp_path, ["host", "ssh://pi@pi4-lab"])
    r = _edgekit("run", pipeline, "--cluster", cluster.address, env=cluster.env, timeout=120)
    assert r.returncode == 4, r.stderr
    assert "ssh://pi@pi4-lab" in r.stderr and "edgekit worker --head" in r.stderr and "Traceback" not in r.stderr
    assert not (pipeline.parent / "edgekit-out").exists()


def test_through_ray_client_from_outside_the_cluster(cluster, tmp_path):
    """ray://HEAD:PORT (Ray Client): the devices listing and a run, as from a laptop."""
    r = _edgekit("devices", "--cluster", cluster.client_address, "--json", env=cluster.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {d["target"]: d["node"] for d in json.loads(r.stdout)["devices"]} == cluster.devices
    # an address pasted with spaces around it: checked trimmed, and Ray is given it trimmed too
    r = _edgekit("devices", "--cluster", f" {cluster.client_address} ", "--json", env=cluster.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {d["target"]: d["node"] for d in json.loads(r.stdout)["devices"]} == cluster.devices
    pipeline = _project(tmp_path, ["host"])
    r = _edgekit("run", pipeline, "--only", "fp16", "--cluster", cluster.client_address, "--json", env=cluster.env)
    assert r.returncode == 0, r.stderr
    (build,) = json.loads(r.stdout)["builds"]
    assert build["status"] == "built" and build["profiles"][0]["node"]["id"] == cluster.devices["host"]


def test_a_worker_with_other_tool_versions_refuses_to_build(cluster, tmp_path, monkeypatch):
    """The cache key holds the driver's tool versions: a worker whose versions differ builds
    nothing and says which (exit 3 in the report's error), rather than an artifact the key does not
    describe. Here the driver claims a torch that no worker has."""
    import ray

    from edgekit.cluster_tasks import build_task
    from edgekit.pipeline import tool_versions
    from edgekit.pipeline_file import load

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    p = load(_project(tmp_path, ["host"]))
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    try:
        claimed = {**tool_versions(), "torch": "0.0.1"}
        meta, files = ray.get(ray.remote(build_task).options(num_cpus=1).remote(
            p, p.builds[0], {}, "digits.tflite", "key", claimed), timeout=120)
    finally:
        ray.shutdown()
    assert files == {} and meta["error"]["exit_code"] == 3, meta
    assert "torch" in meta["error"]["message"] and "(driver: 0.0.1)" in meta["error"]["message"]


def test_without_ray_cluster_is_exit_3_with_the_install_line(tmp_path):
    site = tmp_path / "no-ray"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nclass _NoRay:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoRay())\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    pipeline = _project(tmp_path, ["host"])
    for args in (["run", pipeline, "--cluster", "auto"], ["worker", "--head", "127.0.0.1:6379"],
                 ["devices", "--cluster", "auto"]):
        r = _edgekit(*args, env=env, timeout=120)
        assert r.returncode == 3 and "pip install 'edgekit-ml[ray]'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (pipeline.parent / "edgekit-out").exists()


@pytest.mark.parametrize("address", ["", "ray://", "ray://:0", "ray://nohost:99999", "foo", "host:port", " "])
def test_a_malformed_cluster_address_is_exit_2_at_once_and_writes_nothing(tmp_path, address):
    # Ray waited ~34 s on "ray://" and "ray://:0", then said exit 4; an empty --cluster ran locally
    pipeline = _project(tmp_path, ["host"])
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    for args in (["run", pipeline, "--cluster", address], ["devices", "--cluster", address],
                 ["worker", "--head", address if address.startswith("ray://") or not address.strip() else "ray://x:1"]):
        t0 = time.monotonic()
        r = _edgekit(*args, env=env, timeout=60)
        assert r.returncode == 2 and "is not a Ray address" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert time.monotonic() - t0 < 20, args
    assert not (pipeline.parent / "edgekit-out").exists()


def test_an_address_where_nothing_listens_is_exit_4_in_seconds_with_what_to_start(tmp_path):
    # HOST:6379 with no GCS there made Ray retry for minutes (killed by `timeout 120` still waiting)
    pipeline = _project(tmp_path, ["host"])
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    for args in (["run", pipeline, "--cluster", f"127.0.0.1:{port}"], ["run", pipeline, "--cluster", f"ray://127.0.0.1:{port}"],
                 ["devices", "--cluster", f"127.0.0.1:{port}"], ["worker", "--head", f"127.0.0.1:{port}", "--target", "host"],
                 ["devices", "--cluster", "ray://nohost.invalid:10001"]):
        t0 = time.monotonic()
        r = _edgekit(*args, env=env, timeout=60)
        assert r.returncode == 4 and "ray start --head" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert time.monotonic() - t0 < 30, args
    assert not (pipeline.parent / "edgekit-out").exists()


def test_relative_input_paths_are_moved_on_a_worker_in_another_folder(tmp_path, monkeypatch):
    # `edgekit run edgekit.yaml` from the pipeline's folder: every build on a worker started
    # elsewhere failed with "The model models/digits.keras does not exist."
    from edgekit.cluster_tasks import _moved

    monkeypatch.chdir(tmp_path)  # the worker's folder: models/ is not here
    where = {"models/digits.keras": "/w/in/0/digits.keras", "nets.py": "/w/in/1/nets.py"}
    assert _moved("models/digits.keras", where) == "/w/in/0/digits.keras"
    assert _moved("nets.py:build", where) == "/w/in/1/nets.py:build"
    assert _moved("pkg.module:make", where) == "pkg.module:make" and _moved(None, where) is None


def test_a_port_that_listens_but_is_no_ray_gcs_is_exit_4_in_seconds(tmp_path):
    # a listener that never speaks (a wrong port, another service) made ray.init retry for minutes
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    pipeline = _project(tmp_path, ["host"])
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        for args in (["run", pipeline, "--cluster", address], ["devices", "--cluster", address],
                     ["worker", "--head", address, "--target", "host"]):
            t0 = time.monotonic()
            r = _edgekit(*args, env=env, timeout=90)
            assert r.returncode == 4 and "no Ray GCS answered" in r.stderr and "Traceback" not in r.stderr, r.stderr
            assert time.monotonic() - t0 < 40, args
    assert not (pipeline.parent / "edgekit-out").exists()


@pytest.mark.parametrize("targets, words", [(["host", " host"], "more than once"), ([""], "--target is empty"),
                                            (["nosuch://x"], "Unknown target")])
def test_worker_refuses_empty_duplicate_and_unknown_targets_before_joining(targets, words):
    # `--target ''` joined offering the resource 'edgekit:'; `--target host --target host` joined
    # announcing host twice; an unknown target behind a silent head was exit 4, not 2
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    args = [a for t in targets for a in ("--target", t)]
    r = _edgekit("worker", "--head", f"127.0.0.1:{_free_port()}", "--no-check", *args, env=env, timeout=60)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_ctrl_c_cancels_the_cluster_tasks_and_leaves_a_partial_report(cluster, tmp_path):
    pipeline = _project(tmp_path, ["host"])
    out = tmp_path / "out"
    proc = subprocess.Popen([*edgekit_cmd(), "run", str(pipeline), "-o", str(out), "--cluster", cluster.address],
                            env=cluster.env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 300
        for line in proc.stderr:
            if ": built" in line or time.monotonic() > deadline:  # one build is whole, others still run
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 130, rest
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True and report["passed"] is False and report["not_run"], report
    assert len(report["builds"]) + len(report["not_run"]) == 4 and "partial report" in rest
    assert "Traceback" not in rest, rest
    deadline = time.monotonic() + 30  # the cancelled builds stop on the workers, not run to the end
    while time.monotonic() < deadline and any(_task_process("build_task", w) for w in (cluster.host_worker, cluster.board_worker)):
        time.sleep(0.5)
    assert not any(_task_process("build_task", w) for w in (cluster.host_worker, cluster.board_worker))


def _task_process(name: str, worker: subprocess.Popen) -> int | None:
    """The pid of a Ray worker process of WORKER's node running task NAME (Ray titles it ray::NAME)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if cmd.startswith(f"ray::{name}") and os.getpgid(ppid) == worker.pid:
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_build_the_build_finishes_elsewhere(cluster, tmp_path):
    """Kill the board's worker while it runs a build: Ray runs the build again on the other
    worker; the board's measurements are reported failed with the reason; the report is whole.
    (Last in this file: the cluster has one worker less afterwards.)"""
    pipeline = _project(tmp_path, ["host", cluster.board])
    out = tmp_path / "out"
    run = subprocess.Popen([*edgekit_cmd(), "run", str(pipeline), "-o", str(out), "--cluster", cluster.address, "--json"],
                           env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, victim = time.monotonic() + 180, None
        while victim is None and time.monotonic() < deadline and run.poll() is None:
            victim = _task_process("build_task", cluster.board_worker)
            time.sleep(0.1)
        assert victim, "no build ran on the board's worker"
        os.killpg(cluster.board_worker.pid, signal.SIGKILL)
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 1, stderr
    report = json.loads(stdout)
    assert [b["name"] for b in report["builds"]] == ["fp32", "fp16", "dyn8", "int8"] and not report["interrupted"]
    assert all(b["status"] == "built" and b["convert"]["sha256"] for b in report["builds"]), report["builds"]
    for b in report["builds"]:  # the killed build too ran again, to the end, on the surviving worker
        assert b["node"]["id"] == cluster.devices["host"], b["node"]
        host, board = b["profiles"]
        assert "error" not in host and host["node"]["id"] == cluster.devices["host"]
        assert board["error"]["exit_code"] == 4 and board["target"] == cluster.board
        assert ("no worker offers this device any more" in board["error"]["message"]
                or "the measurement did not finish" in board["error"]["message"]), board["error"]
    assert json.loads((out / "report.json").read_text())["builds"] == report["builds"]
