"""The emulated arm64 Raspberry Pi (slow tier): built once per machine and cached in
~/.cache/edgekit/emulators/rpi (or $EDGEKIT_CACHE), then artifacts profiled and validated on ARM."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def rpi():
    if os.geteuid() != 0:
        pytest.skip("the emulated board needs root (chroot, binfmt_misc)")
    missing = [t for t in ("mmdebstrap", "update-binfmts", "qemu-aarch64-static", "unshare") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/emulator-deps.sh "
                    "(apt-get install mmdebstrap qemu-user-static binfmt-support)")
    from edgekit.targets import qemu

    info = qemu.create("rpi")  # cached after the first build on this machine
    return info["path"]


def test_create_is_cached(cli, rpi):
    r = cli("emulator", "create", "rpi", "--json")
    assert r.exit_code == 0, r
    assert r.json()["cached"] is True and r.json()["path"] == rpi


def test_devices_check(cli, rpi):
    r = cli("devices", "check", "qemu-arm64", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["emulated"] and res["device"]["machine"] == "aarch64"
    assert res["formats"]["tflite"]["available"] and res["formats"]["executorch"]["available"]
    assert "Debian" in (res["device"]["os"] or "")


def test_profile_and_validate_tflite_on_arm(cli, rpi, keras_digits, digits_tflite, digits_files):
    r = cli("profile", digits_tflite, "--target", "qemu-arm64", "--runs", "10", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["emulated"] is True and res["device"]["machine"] == "aarch64"
    assert "emulated" in res["device"]["cpu"]
    assert any("emulated" in w for w in res["warnings"]) and "EMULATED" in r.stderr
    lat = res["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    d = res["delegation"]
    assert d["delegated_ops"] == d["total_ops"]  # XNNPACK's ARM kernels took the whole graph
    assert not list(Path(rpi, "tmp").glob("edgekit-*"))  # the board's scratch folder is gone
    r = cli("validate", keras_digits["keras"], digits_tflite, "--data", digits_files / "test.npz",
            "--samples", "40", "--target", "qemu-arm64", "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["passed"] and r.json()["target"] == "qemu-arm64"


def test_profile_and_validate_pte_on_arm(cli, rpi, torch_digits, digits_pte):
    """A .pte exported by ExecuTorch 1.5.1 on the host runs on ExecuTorch 1.0.1 (aarch64) in the board."""
    r = cli("profile", digits_pte, "--target", "qemu-arm64", "--runs", "5", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["device"]["machine"] == "aarch64" and res["runtime"]["version"] == "1.0.1"
    assert res["delegation"] is not None  # from the manifest: the board has no devtools for ETDump
    # the same .pte on the host (x86 kernels) as the reference, on ARM as the candidate
    r = cli("validate", digits_pte, digits_pte, "--data", torch_digits["test"], "--samples", "30",
            "--target", "qemu-arm64", "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["passed"]
