"""Named targets (targets.toml) through the CLI and edgekit.yaml, and `edgekit devices` listing
what edgekit can reach: host, the emulated phone through the real adb server, Coral (a fake
/sys; absent here), named targets, `--check`."""

from __future__ import annotations

import socket
import sys

import pytest

from edgekit.targets import discover, names
from tests.targets.test_android import ADB, adb_server, phone  # noqa: F401 (fixtures)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def named(tmp_path, monkeypatch):
    """Write targets.toml (TEXT) in a temp config folder that EDGEKIT_TARGETS_FILE points at; no
    adb server to ask unless a test attaches the emulated phone."""
    path = tmp_path / "cfg" / "targets.toml"
    path.parent.mkdir()
    monkeypatch.setenv("EDGEKIT_TARGETS_FILE", str(path))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(_free_port()))

    def write(text: str):
        path.write_text(text)
        return path

    return write


# ---- the file ---------------------------------------------------------------------------------

def test_config_path_follows_xdg_and_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEKIT_TARGETS_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert names.config_path() == tmp_path / "xdg" / "edgekit" / "targets.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert names.config_path() == tmp_path / "home" / ".config" / "edgekit" / "targets.toml"
    monkeypatch.setenv("EDGEKIT_TARGETS_FILE", str(tmp_path / "mine.toml"))
    assert names.config_path() == tmp_path / "mine.toml" and names.load() == {}  # missing: no names


@pytest.mark.parametrize("text, says", [
    ('[targets]\nssh = "ssh://pi@rpi"\n', "is a target scheme"),
    ('[targets]\nLocal = "host"\n', "is a target scheme"),
    ('[targets]\npi4 = "ftp://pi@rpi"\n', "not a target edgekit knows"),
    ('[targets]\npi4 = "host"\nlab = "pi4"\n', "a name cannot stand for another name"),
    ('[targets]\npi4 = 3\n', "must be a TARGET string"),
    ('[targets]\n"a b" = "host"\n', "a name is letters"),
    ('targets = "host"\n', "must be a table"),
    ('[targets\npi4 = "host"\n', "not valid TOML"),
])
def test_a_broken_file_is_refused_naming_it(cli, named, text, says):
    path = named(text)
    r = cli("devices", "check", "pi4", "--json")
    assert r.exit_code == 2, r
    assert says in r.stderr and str(path) in r.stderr, r.stderr
    assert r.json()["error"]["kind"] == "bad-input" or r.json()["error"]["exit_code"] == 2


def test_a_scheme_keeps_its_meaning_whatever_the_file_says(cli, named):
    named('[targets\nbroken')
    r = cli("devices", "check", "host", "--json")  # a registered form never reads the file
    assert r.exit_code == 0 and r.json()["target"] == "host", r


# ---- a name works everywhere a TARGET does ----------------------------------------------------

def test_named_target_through_devices_check_and_profile(cli, named, tmp_path):
    named(f'[targets]\nhere = "local"\npi4 = "ssh://pi@127.0.0.1:{_free_port()}"\n')
    r = cli("devices", "check", "here", "--json")
    assert r.exit_code == 0, r
    assert r.json()["target"] == "here" and r.json()["reachable"] is True
    r = cli("devices", "check", "pi4", "--json")  # resolved to the ssh target, which refuses the connection
    assert r.exit_code == 4 and r.json()["error"]["message"].startswith("pi4: cannot reach pi@127.0.0.1"), r
    r = cli("profile", tmp_path / "none.tflite", "--target", "nowhere")
    assert r.exit_code == 2
    r = cli("devices", "check", "nowhere")
    assert r.exit_code == 2 and "Unknown target 'nowhere'" in r.stderr
    assert "Named targets (" in r.stderr and "here, pi4" in r.stderr and "ssh://user@host[:port]" in r.stderr


def test_unknown_target_without_a_file_says_how_to_name_one(cli, named):
    r = cli("devices", "check", "pi4")
    assert r.exit_code == 2 and "Unknown target 'pi4'" in r.stderr
    assert "[targets] pi4 = " in r.stderr and "coral@ssh://user@host" in r.stderr


def test_named_targets_in_edgekit_yaml(named, tmp_path):
    from edgekit.errors import BadInput
    from edgekit.pipeline_file import load

    named('[targets]\npi4 = "ssh://pi@raspberrypi.local"\n')
    (tmp_path / "m.keras").write_bytes(b"x")
    f = tmp_path / "edgekit.yaml"
    f.write_text("model: m.keras\nbuilds:\n  - {name: a, to: tflite}\ntargets: [host, pi4]\n"
                 "budgets:\n  latency_p90_ms: {host: 20, pi4: 60}\n")
    p = load(f)
    assert p.targets == ["host", "pi4"] and p.budgets["latency_p90_ms"] == {"host": 20, "pi4": 60}
    f.write_text("model: m.keras\nbuilds:\n  - {name: a, to: tflite}\ntargets:\n  - host\n  - pi5\n")
    with pytest.raises(BadInput) as e:
        load(f)
    assert ":6: targets.1: unknown target 'pi5'" in e.value.message and "pi4" in e.value.hint


def test_completion_offers_names_then_schemes(named):
    from edgekit.commands.options import complete_targets

    named('[targets]\npi4 = "ssh://pi@raspberrypi.local"\npixel = "adb:X"\n')
    values = [c.value for c in complete_targets(None, None, "")]
    assert values[:2] == ["pi4", "pixel"] and {"host", "ssh://", "adb", "qemu-arm64", "coral", "coral@ssh://"} <= set(values)
    assert [c.value for c in complete_targets(None, None, "p")] == ["pi4", "pixel"]
    assert [c.value for c in complete_targets(None, None, "coral@")] == ["coral@ssh://"]


def test_shell_completion_through_the_command(named):
    import os
    import subprocess

    from tests.conftest import edgekit_cmd

    named('[targets]\npi4 = "ssh://pi@raspberrypi.local"\n')
    env = dict(os.environ, _EDGEKIT_COMPLETE="bash_complete", COMP_WORDS="edgekit profile m.tflite --target p",
               COMP_CWORD="4")
    p = subprocess.run(edgekit_cmd(), env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.split() == ["plain,pi4"], p
    p = subprocess.run(edgekit_cmd(), env={**os.environ, "_EDGEKIT_COMPLETE": "bash_source"},
                       capture_output=True, text=True, timeout=60)
    assert "_edgekit_completion" in p.stdout


# ---- edgekit devices ---------------------------------------------------------------------------

def test_devices_lists_host_and_named_targets_without_contacting_them(cli, named):
    path = named('[targets]\npi4 = "ssh://pi@raspberrypi.local"\n')
    r = cli("devices", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["kind"] == "devices" and res["targets_file"] == str(path)
    rows = {d["name"]: d for d in res["devices"]}
    assert rows["host"]["reachable"] is True and rows["host"]["kind"] == "host"
    assert rows["pi4"] == {"name": "pi4", "spec": "ssh://pi@raspberrypi.local", "kind": "ssh", "reachable": None,
                           "detail": "named target, not checked"}
    assert not [d for d in res["devices"] if d["kind"] in ("coral", "adb")]  # none here
    assert any("no adb server" in n for n in res["notes"])
    assert "pi4" in r.stderr and "not checked" in r.stderr


def test_devices_check_says_who_answers_and_why_not(cli, named):
    named(f'[targets]\nhere = "local"\nboard = "ssh://pi@127.0.0.1:{_free_port()}"\n'
          'gone = "qemu-arm64:/nonexistent/rootfs"\n')
    r = cli("devices", "--check", "--timeout", "60", "--json")
    assert r.exit_code == 0, r
    rows = {d["name"]: d for d in r.json()["devices"]}
    assert rows["host"]["reachable"] is True and "runtimes:" in rows["host"]["detail"]
    assert rows["here"]["reachable"] is True
    assert rows["board"]["reachable"] is False and "cannot reach pi@127.0.0.1" in rows["board"]["detail"]
    assert rows["gone"]["reachable"] is False and "No emulated board at /nonexistent/rootfs" in rows["gone"]["detail"]
    assert "edgekit emulator create" in rows["gone"]["detail"]  # the hint, too
    assert "board" in r.stderr and "cannot reach" in r.stderr


def test_check_all_gives_up_after_the_timeout(monkeypatch):
    import threading
    import time

    from edgekit import targets

    release = threading.Event()

    class Slow:
        def check(self):
            release.wait(30)
            return {}

    monkeypatch.setattr(targets, "get", lambda spec, **kw: Slow())
    rows = [{"name": "slow", "spec": "host", "kind": "host", "reachable": None, "detail": ""}]
    t0 = time.monotonic()
    discover.check_all(rows, timeout=0.5)
    release.set()
    assert time.monotonic() - t0 < 5
    assert rows[0]["reachable"] is False and rows[0]["detail"] == "no answer within 0.5 s"


def test_coral_from_usb_and_pci_ids(tmp_path, monkeypatch):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    for name, ids in {"1-1": ("18d1", "9302"), "1-2": ("1d6b", "0002"), "2-1": ("1a6e", "089a")}.items():
        d = sysfs / "bus/usb/devices" / name
        d.mkdir(parents=True)
        (d / "idVendor").write_text(ids[0] + "\n")
        (d / "idProduct").write_text(ids[1] + "\n")
    pci = sysfs / "bus/pci/devices/0000:01:00.0"
    pci.mkdir(parents=True)
    (pci / "vendor").write_text("0x1ac1\n")
    (pci / "device").write_text("0x089a\n")
    dev.mkdir()
    monkeypatch.setattr(discover, "SYSFS", sysfs)
    monkeypatch.setattr(discover, "DEV", dev)
    rows = discover.coral_devices()
    assert [(r["spec"], r["reachable"]) for r in rows] == [("coral:usb:0", True), ("coral:usb:1", True),
                                                           ("coral:pci", False)]
    assert "firmware not loaded" in rows[1]["detail"] and "apex driver" in rows[2]["detail"]
    (dev / "apex_0").write_text("")
    assert discover.coral_devices()[-1]["reachable"] is True
    monkeypatch.setattr(discover, "SYSFS", tmp_path / "nothing")
    monkeypatch.setattr(discover, "DEV", tmp_path / "nothing")
    assert discover.coral_devices() == []


@pytest.mark.skipif(ADB is None, reason="no adb client")
def test_devices_lists_the_emulated_phone(cli, phone, named, adb_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server["port"]))
    d = phone()
    r = cli("devices", "--json")
    assert r.exit_code == 0, r
    (row,) = [x for x in r.json()["devices"] if x["kind"] == "adb" and x["spec"] == f"adb:{d.addr}"]
    assert row["reachable"] is True and row["name"] == f"adb:{d.addr}"
    assert "Edgekit Phone 1" in row["detail"] and "Android 14" in row["detail"] and "arm64-v8a" in row["detail"]
    assert not r.json()["notes"]
    assert "no adb server" not in r.stderr and f"adb:{d.addr}" in r.stderr


def test_devices_subcommands_still_work(cli, named):
    r = cli("devices", "check", "--json")
    assert r.exit_code == 0 and r.json()["target"] == "host"
    r = cli("devices", "adb", "--help")  # (run, adbutils would start an adb server: test_android.py runs it)
    assert r.exit_code == 0 and "--clean" in r.stdout
    r = cli("devices", "--help")
    assert r.exit_code == 0 and "check" in r.stdout and "adb" in r.stdout and "--check" in r.stdout
