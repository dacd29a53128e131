"""The SSH target against a real OpenSSH server on 127.0.0.1 (see conftest.Sshd)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.conftest import edgekit_cmd


def _board(python):
    return f"ssh://board?python={python}"


def test_profile_over_ssh(cli, sshd, ssh_home, board_python, digits_tflite):
    r = cli("profile", digits_tflite, "--target", _board(board_python), "--runs", "25", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["target"] == "ssh://board" and res["emulated"] is False
    lat = res["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert res["delegation"]["delegated_ops"] == res["delegation"]["total_ops"]
    assert res["size_bytes"] == digits_tflite.stat().st_size and res["transport"]["push_s"] >= 0
    assert res["device"]["python"] and res["device"]["runtimes"]["ai-edge-litert"]
    assert sshd.leftovers() == []  # the board's temporary folder is gone


def test_explicit_url_and_validate_on_board(cli, sshd, ssh_home, board_python, keras_digits, digits_tflite,
                                            digits_files):
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}?python={board_python}"
    # no IdentityFile for a bare address: the key comes from ~/.ssh/id_ed25519, as with OpenSSH
    key = ssh_home / ".ssh" / "id_ed25519"
    key.write_bytes(sshd.user_key.read_bytes())
    key.chmod(0o600)
    r = cli("validate", keras_digits["keras"], digits_tflite, "--data", digits_files / "test.npz",
            "--samples", "40", "--target", url, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"]["passed"] and res["target"] == url and res["data"]["samples"] == 40
    assert sshd.leftovers() == []


def test_ptl_and_onnx_with_external_data_over_ssh(cli, sshd, ssh_home, board_python, torch_digits, digits_ptl,
                                                  digits_onnx):
    """The .onnx's weights file travels with it; on-board parity of both against the PyTorch original."""
    r = cli("profile", digits_onnx, "--target", _board(board_python), "--runs", "10", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "onnx" and res["latency_ms"]["p50"] > 0 and res["ops"]["by_type"]
    assert sshd.leftovers() == []
    for artifact in (digits_onnx, digits_ptl):
        r = cli("validate", *torch_digits["args"], artifact, "--data", torch_digits["test"], "--samples", "30",
                "--target", _board(board_python), "--json")
        assert r.exit_code == 0, (artifact, r)
        out = r.json()["parity"]["outputs"][0]
        assert out["max_abs"] < 1e-4 and out["top1_agreement"] == 1.0, (artifact, out)
    assert sshd.leftovers() == []


def test_unknown_host_key_refused_then_accepted(cli, sshd, ssh_home, board_python, digits_tflite):
    known = ssh_home / ".ssh" / "known_hosts"
    known.write_text("")
    r = cli("profile", digits_tflite, "--target", _board(board_python), "--runs", "3")
    assert r.exit_code == 4, r
    assert "host key" in r.stderr and "unknown" in r.stderr and "--accept-new-host-key" in r.stderr
    assert sshd.leftovers() == []
    r = cli("devices", "check", _board(board_python), "--accept-new-host-key", "--json")
    assert r.exit_code == 0, r
    assert f"[127.0.0.1]:{sshd.port}" in known.read_text()  # recorded, as accept-new does
    assert r.json()["formats"]["tflite"]["available"]
    r = cli("profile", digits_tflite, "--target", _board(board_python), "--runs", "3")
    assert r.exit_code == 0, r  # trusted from now on, without the flag


def test_changed_host_key_refused(cli, sshd, ssh_home, board_python, digits_tflite, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = other.with_suffix(".pub").read_text().split()
    (ssh_home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
    r = cli("profile", digits_tflite, "--target", _board(board_python), "--runs", "3", "--accept-new-host-key")
    assert r.exit_code == 4, r
    assert "changed" in r.stderr


def test_missing_runtime_on_board(cli, sshd, ssh_home, bare_python, digits_tflite):
    r = cli("profile", digits_tflite, "--target", _board(bare_python), "--runs", "3")
    assert r.exit_code == 4, r
    assert f"{bare_python} -m pip install ai-edge-litert" in r.stderr
    assert sshd.leftovers() == []
    r = cli("devices", "check", _board(bare_python), "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["numpy"] and not res["formats"]["tflite"]["available"]
    assert res["missing"]["tflite"] == f"{bare_python} -m pip install ai-edge-litert"


def test_missing_executorch_on_board_gives_a_cpu_only_pinned_line(cli, sshd, ssh_home, bare_python, digits_pte):
    """A board without ExecuTorch: exit 4 with a pip line that cannot pull a CUDA torch (CPU-only
    index, pinned to the torch executorch links against) and the executorch that wrote the .pte."""
    r = cli("profile", digits_pte, "--target", _board(bare_python), "--runs", "3")
    assert r.exit_code == 4, r
    assert "Traceback" not in r.stderr
    line = (f"{bare_python} -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && "
            f"{bare_python} -m pip install executorch==1.5.1")
    assert line in r.stderr.replace("\n  ", " "), r.stderr
    assert sshd.leftovers() == []
    r = cli("devices", "check", _board(bare_python), "--json")
    assert r.exit_code == 0, r
    missing = r.json()["missing"]
    assert missing["executorch"] == line
    assert missing["torchscript"] == f"{bare_python} -m pip install torch==2.13.0 --index-url " \
                                     "https://download.pytorch.org/whl/cpu"


def test_missing_python_on_board(cli, sshd, ssh_home, digits_tflite):
    r = cli("profile", digits_tflite, "--target", _board("/nonexistent/python3"), "--runs", "3")
    assert r.exit_code == 4, r
    assert "no Python" in r.stderr
    assert sshd.leftovers() == []


def test_unreachable_and_bad_key(cli, sshd, ssh_home, board_python, digits_tflite):
    closed = sshd.port + 1 if sshd.port < 65535 else sshd.port - 1
    r = cli("profile", digits_tflite, "--target", f"ssh://{sshd.user}@127.0.0.1:{closed}", "--runs", "3")
    assert r.exit_code == 4 and "cannot reach" in r.stderr, r
    cfg = ssh_home / ".ssh" / "config"
    cfg.write_text(cfg.read_text().replace(f"IdentityFile {sshd.user_key}", "IdentityFile /nonexistent"))
    r = cli("profile", digits_tflite, "--target", _board(board_python), "--runs", "3")
    assert r.exit_code == 4 and "authentication" in r.stderr, r


def test_connection_dropped_mid_run(sshd, ssh_home, board_python, digits_tflite):
    """Kill the sshd session while the agent runs: exit 4, and nothing left on the board."""
    env = dict(os.environ, HOME=str(ssh_home))
    p = subprocess.Popen([*edgekit_cmd(), "profile", str(digits_tflite), "--target", _board(board_python),
                          "--runs", "3000000", "--warmup", "0", "--no-ops"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        started = False
        while time.monotonic() < deadline and p.poll() is None:
            dirs = list(sshd.board_tmp.glob("edgekit-*"))
            if dirs and (dirs[0] / digits_tflite.name).exists() and _agent_pids(dirs[0]):
                started = True
                break
            time.sleep(0.05)
        assert started, "the agent never started on the board"
        time.sleep(1.0)  # inside the timed loop
        agents = _agent_pids(dirs[0])
        for pid in sshd.session_pids():
            os.kill(pid, 9)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 4, err
    assert "connection dropped" in err
    deadline = time.monotonic() + 15  # the agent sees its stdin close and removes its folder
    while time.monotonic() < deadline and (sshd.leftovers() or any(os.path.exists(f"/proc/{a}") for a in agents)):
        time.sleep(0.1)
    assert sshd.leftovers() == []
    assert not [a for a in agents if os.path.exists(f"/proc/{a}") and "edgekit_agent" in _cmdline(a)]


def _cmdline(pid) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _agent_pids(folder) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and "edgekit_agent" in _cmdline(p)
            and str(folder) in _cmdline(p)]


def test_pipeline_latency_budget_on_a_board_named_with_its_python(cli, sshd, ssh_home, board_python, keras_digits,
                                                                   digits_files, tmp_path):
    """edgekit.yaml's `targets: [ssh://board?python=...]`: the profile names the board without the
    query, and the latency budget of that target is still judged (it read "not measured")."""
    import yaml

    target = _board(board_python)
    (tmp_path / "edgekit.yaml").write_text(yaml.safe_dump({
        "model": str(keras_digits["keras"]), "data": str(digits_files / "test.npz"), "runs": 10,
        "builds": [{"name": "fp32", "to": "tflite"}], "targets": [target],
        "budgets": {"latency_p90_ms": 1000, "peak_rss_mb": 4000}}))
    r = cli("run", tmp_path / "edgekit.yaml", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r
    build = r.json()["builds"][0]
    assert build["profiles"][0]["target"] == "ssh://board"
    verdicts = {v["budget"]: v for v in build["budgets"]}
    for name in ("latency_p90_ms", "peak_rss_mb"):
        assert verdicts[name]["target"] == target and verdicts[name]["value"] is not None, verdicts[name]
        assert verdicts[name]["passed"]
    assert sshd.leftovers() == []
