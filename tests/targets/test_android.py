"""The Android target against an emulated phone (tests/adb_server.py) that the real adb server
(Debian's `adb`, else the one adbutils ships) reaches with `adb connect`: discovery, push, run
with the agent, results back, quoting, cleanup, a device vanishing mid-run, unauthorized and
ambiguous devices, and old devices without shell v2."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.adb_server import EmulatedDevice

ADB = shutil.which("adb")
if ADB is None:
    try:
        from adbutils import adb_path

        ADB = adb_path()
    except Exception:  # pragma: no cover
        ADB = None
pytestmark = pytest.mark.skipif(ADB is None, reason="no adb client (apt-get install adb, or pip install adbutils)")
TMP = Path("/data/local/tmp")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def adb_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("adb-home")
    port = _free_port()
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(port), HOME=str(home))
    subprocess.run([ADB, "start-server"], env=env, check=True, capture_output=True, timeout=30)
    try:
        TMP.mkdir(parents=True, exist_ok=True)
    except OSError:  # pragma: no cover - not root: the emulated phone's /data is not creatable
        pytest.skip("cannot create /data/local/tmp on this host for the emulated phone")

    def adb(*args, check=True):
        return subprocess.run([ADB, *args], env=env, capture_output=True, text=True, timeout=30, check=check)

    yield {"port": port, "env": env, "adb": adb}
    subprocess.run([ADB, "kill-server"], env=env, capture_output=True, timeout=30)


@pytest.fixture
def phone(adb_server, monkeypatch):
    devices = []

    def attach(**kw):
        d = EmulatedDevice(**kw)
        out = adb_server["adb"]("connect", d.addr, check=False)
        deadline = time.monotonic() + 10
        want = "unauthorized" if kw.get("unauthorized") else "device"
        while time.monotonic() < deadline:
            listing = adb_server["adb"]("devices").stdout
            if f"{d.addr}\t{want}" in listing:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"adb never saw {d.addr} as {want}: {out.stdout}{out.stderr} / {listing}")
        devices.append(d)
        return d

    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server["port"]))
    yield attach
    for d in devices:
        adb_server["adb"]("disconnect", d.addr, check=False)
        d.vanish()


def ours() -> set[str]:
    return {p.name for p in TMP.glob("edgekit-*")}


def test_devices_listing_shows_model_abi_android(cli, phone):
    d = phone()
    r = cli("devices", "adb", "--json")
    assert r.exit_code == 0, r
    (dev,) = [x for x in r.json()["devices"] if x["serial"] == d.addr]
    assert dev["state"] == "device" and dev["model"] == "Edgekit Phone 1" and dev["abi"] == "arm64-v8a"
    assert dev["android"] == "14" and dev["soc"] == "SM8550" and dev["target"] == f"adb:{d.addr}"
    assert "Edgekit Phone 1" in r.stderr


def test_profile_with_the_agent_push_run_results_cleanup(cli, phone, digits_tflite):
    d = phone()
    before = ours()
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}?python={sys.executable}", "--runs", "10",
            "--warmup", "2", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["target"] == f"adb:{d.addr}" and res["runs"] == 10 and res["latency_ms"]["p50"] > 0
    assert res["delegation"]["delegated_ops"] > 0
    assert "sync:" in d.services and any("shell,v2" in s and "edgekit_agent.py" in s for s in d.services)
    assert any("--watch-stdin" in s for s in d.services)
    assert "thermal" in res  # None where the device (here: this container) exposes no thermal zones
    assert any("thermal_zone" in s for s in d.services)
    assert ours() == before  # the device's edgekit-* folder is gone


def test_quoted_model_path_and_on_device_parity(cli, phone, digits_tflite, keras_digits, digits_files, tmp_path):
    d = phone()
    odd = tmp_path / "my model's \"v2\" $(touch pwned).tflite"
    shutil.copyfile(digits_tflite, odd)
    r = cli("profile", odd, "--target", f"adb:{d.addr}?python={sys.executable}", "--runs", "3", "--json")
    assert r.exit_code == 0, r
    assert not Path("/pwned").exists() and not (tmp_path / "pwned").exists()
    import shlex

    # the agent was given the exact name, as one quoted argument
    assert any(shlex.split(s.partition(":")[2]).count(next(a for a in shlex.split(s.partition(":")[2])
                                                             if a.endswith(odd.name))) == 1
               for s in d.services if s.startswith("shell") and "my model" in s)
    v = cli("validate", keras_digits["keras"], digits_tflite, "--data", digits_files / "test.npz", "--samples", "20",
            "--target", f"adb:{d.addr}?python={sys.executable}", "--json")
    assert v.exit_code == 0, v  # outputs computed on the phone, pulled back with sync RECV
    assert v.json()["parity"]["passed"] if "parity" in v.json() else v.json()["passed"]


def test_device_vanishing_mid_run(cli, phone, digits_tflite):
    d = phone()
    before = ours()

    def pull_cable(cmd):
        if "edgekit_agent.py" in cmd and " profile " in cmd:
            threading.Timer(1.5, d.vanish).start()

    d.on_shell.append(pull_cable)
    t0 = time.monotonic()
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}?python={sys.executable}", "--runs", "1000000",
            "--warmup", "0")
    assert r.exit_code == 4, r
    assert "went away" in r.stderr and time.monotonic() - t0 < 60
    d.wait_children(15)  # the agent saw its stdin close (and SIGHUP) and removed its folder
    deadline = time.monotonic() + 10
    while ours() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ours() - before == set()


def test_unauthorized_device(cli, phone, digits_tflite):
    d = phone(unauthorized=True)
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}", "--runs", "3")
    assert r.exit_code == 4, r
    assert "unauthorized" in r.stderr and "Allow USB debugging" in r.stderr
    listing = cli("devices", "adb", "--json").json()["devices"]
    assert {"serial": d.addr, "state": "unauthorized", "target": f"adb:{d.addr}"} in listing


def test_no_serial_with_two_devices_and_unknown_serial(cli, phone, digits_tflite):
    a, b = phone(), phone()
    r = cli("profile", digits_tflite, "--target", "adb", "--runs", "3")
    assert r.exit_code == 2, r
    assert a.addr in r.stderr and b.addr in r.stderr and "adb:SERIAL" in r.stderr
    r = cli("profile", digits_tflite, "--target", "adb:nosuch-serial", "--runs", "3")
    assert r.exit_code == 4 and "no device 'nosuch-serial'" in r.stderr


def test_old_device_without_shell_v2_uses_the_exit_marker(phone):
    from edgekit.targets.android import ADBBoard, AndroidTarget

    d = phone(features="cmd")
    t = AndroidTarget(f"adb:{d.addr}")
    with t.board() as b:
        assert isinstance(b, ADBBoard)
        assert b.shell("echo out; exit 7", 10)[:2] == (7, "out\n")
        assert b.shell("true", 10)[0] == 0
    assert any(s.startswith("shell:") and "EDGEKIT-EXIT:" in s for s in d.services)


def test_stale_folders_cleanup(cli, phone):
    d = phone()
    stale = TMP / "edgekit-deadbeef"
    stale.mkdir(exist_ok=True)
    (stale / "model.tflite").write_text("x")
    other = TMP / "not-edgekit"
    other.mkdir(exist_ok=True)
    r = cli("devices", "adb", "--clean", d.addr, "--json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] >= 1 and not stale.exists() and other.exists()
    other.rmdir()


@pytest.mark.skipif(not os.environ.get("EDGEKIT_TEST_BENCHMARK_MODEL"),
                    reason="no LiteRT benchmark_model binary here (set EDGEKIT_TEST_BENCHMARK_MODEL to a build that "
                           "runs on this host); its output parser is tested on recorded real outputs")
def test_benchmark_model_runner(cli, phone, digits_tflite, monkeypatch):  # pragma: no cover
    d = phone()
    monkeypatch.setenv("EDGEKIT_BENCHMARK_MODEL", os.environ["EDGEKIT_TEST_BENCHMARK_MODEL"])
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}", "--runs", "20", "--json")
    assert r.exit_code == 0, r
    assert r.json()["runtime"]["name"] == "benchmark_model" and r.json()["latency_ms"]["mean"] > 0


def test_devices_check_single_phone_without_serial(cli, phone):
    d = phone()
    r = cli("devices", "check", f"adb?python={sys.executable}", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["target"] == f"adb:{d.addr}" and res["device"]["model"] == "Edgekit Phone 1"
    assert res["formats"]["tflite"]["available"] and res["device"]["android"] == "14"


def test_executor_runner_command_line_and_a_runner_that_prints_no_result(cli, phone, digits_pte, tmp_path):
    """A real binary that is not an executor_runner (true): pushed, run with the runner's flags,
    and a clear error instead of a made-up result."""
    d = phone()
    pte = tmp_path / "m.pte"
    shutil.copy(digits_pte, pte)
    r = cli("profile", pte, "--target", f"adb:{d.addr}?executor_runner={shutil.which('true')}&etdump={tmp_path}/x.etdump",
            "--runs", "7", "--warmup", "2", "--threads", "2")
    assert r.exit_code == 4, r
    assert "executor_runner exited 0 without a result" in r.stderr
    (cmd,) = [s for s in d.services if s.startswith("shell") and "/executor_runner" in s]
    assert "--model_path=" in cmd and "--num_executions=9" in cmd and "--cpu_threads=2" in cmd
    assert "--etdump_path=" in cmd and "model.etdump" in cmd


@pytest.mark.skipif(not os.environ.get("EDGEKIT_TEST_EXECUTOR_RUNNER"),
                    reason="no ExecuTorch executor_runner binary here (set EDGEKIT_TEST_EXECUTOR_RUNNER to a build "
                           "that runs on this host); its output parser is tested on recorded real outputs")
def test_executor_runner_runner(cli, phone, digits_pte, monkeypatch):  # pragma: no cover
    d = phone()
    monkeypatch.setenv("EDGEKIT_EXECUTOR_RUNNER", os.environ["EDGEKIT_TEST_EXECUTOR_RUNNER"])
    r = cli("profile", digits_pte, "--target", f"adb:{d.addr}", "--runs", "5", "--json")
    assert r.exit_code == 0, r
    assert r.json()["runtime"]["name"] == "executor_runner" and r.json()["latency_ms"]["mean"] > 0


@pytest.fixture
def emulator_5554(tmp_path, monkeypatch):
    """An emulated phone listening where the Android Emulator's adbd does (127.0.0.1:5555), and an
    adb server started after it, which finds it by its own scan of 5555-5585 (no `adb connect`)."""
    try:
        d = EmulatedDevice(port=5555)
    except OSError as exc:
        pytest.skip(f"127.0.0.1:5555 is taken on this host ({exc}); cannot stand in for emulator-5554")
    port = _free_port()
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(port), HOME=str(tmp_path))
    subprocess.run([ADB, "start-server"], env=env, check=True, capture_output=True, timeout=30)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    try:
        deadline = time.monotonic() + 15
        while "emulator-5554\tdevice" not in (listing := subprocess.run(
                [ADB, "devices"], env=env, capture_output=True, text=True, timeout=30).stdout):
            assert time.monotonic() < deadline, f"the adb server never listed emulator-5554: {listing}"
            time.sleep(0.2)
        yield d
    finally:
        subprocess.run([ADB, "kill-server"], env=env, capture_output=True, timeout=30)
        d.vanish()


def test_emulator_5554_found_without_adb_connect(cli, emulator_5554, digits_tflite):
    r = cli("devices", "adb", "--json")
    assert r.exit_code == 0, r
    (dev,) = [x for x in r.json()["devices"] if x["serial"] == "emulator-5554"]
    assert dev["state"] == "device" and dev["target"] == "adb:emulator-5554" and dev["model"] == "Edgekit Phone 1"
    r = cli("profile", digits_tflite, "--target", f"adb:emulator-5554?python={sys.executable}", "--runs", "5",
            "--json")
    assert r.exit_code == 0, r
    assert r.json()["target"] == "adb:emulator-5554" and r.json()["latency_ms"]["p50"] > 0
    assert any("edgekit_agent.py" in s for s in emulator_5554.services)


def test_core_pinning_with_taskset_on_the_command_line(cli, phone, digits_tflite):
    d = phone()
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}?python={sys.executable}&cpus=0", "--runs", "3",
            "--json")
    assert r.exit_code == 0, r
    assert r.json()["pinning"] == {"cpus": "0", "mask": "1", "applied": True}
    (run,) = [s for s in d.services if "edgekit_agent.py" in s and " profile " in s]
    assert "taskset 1 " in run.partition(":")[2]


def test_device_without_taskset_warns_and_still_measures(cli, phone, digits_tflite, tmp_path):
    bare = tmp_path / "phone-bin"  # the phone's PATH: this host's tools, without taskset
    bare.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name != "taskset":
            (bare / tool.name).symlink_to(tool)
    d = phone(env={"PATH": str(bare)})
    r = cli("profile", digits_tflite, "--target", f"adb:{d.addr}?python={sys.executable}&taskset=f0", "--runs", "3",
            "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["pinning"]["applied"] is False and "taskset is not on the device" in res["pinning"]["reason"]
    assert any(w.startswith("Cores not pinned") for w in res["warnings"])
    assert not any("taskset f0 " in s and "edgekit_agent.py" in s for s in d.services)
