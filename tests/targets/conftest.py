"""Target fixtures: artifacts converted by edgekit itself, and a real OpenSSH server on
127.0.0.1 (generated host and user keys, key-only auth, a high port) standing in for a board."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.converters.conftest import nets, torch_digits  # noqa: F401  (re-exported fixtures)

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture(scope="session")
def digits_tflite(keras_digits, digits_files, tmp_path_factory):
    d = tmp_path_factory.mktemp("digits-tflite")
    out = d / "digits.tflite"
    r = run_cli("convert", keras_digits["keras"], "-o", out, "--data", digits_files / "test.npz", "--samples", "32")
    assert r.exit_code == 0, r
    return out


@pytest.fixture(scope="session")
def digits_pte(torch_digits, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("digits-pte")
    out = d / "digits.pte"
    r = run_cli("convert", *torch_digits["args"], "--to", "executorch", "-o", out,
                "--data", torch_digits["test"], "--samples", "32")
    assert r.exit_code == 0, r
    return out


@pytest.fixture(scope="session")
def digits_ptl(torch_digits, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("digits-ptl") / "digits.ptl"
    r = run_cli("convert", *torch_digits["args"], "--to", "torchscript", "-o", out,
                "--data", torch_digits["test"], "--samples", "32")
    assert r.exit_code == 0, r
    return out


@pytest.fixture(scope="session")
def digits_onnx(torch_digits, tmp_path_factory):  # noqa: F811
    """The trained torch digits net through torch.onnx.export as users run it: the weights land
    in `digits.onnx.data` beside the graph (the exporter's default since torch 2.9)."""
    import torch

    out = tmp_path_factory.mktemp("digits-onnx") / "digits.onnx"
    example = (torch.zeros(1, 1, 8, 8),)
    torch.onnx.export(torch_digits["model"].eval(), example, str(out), input_names=["image"],
                      output_names=["logits"], dynamo=True, verbose=False)
    assert (out.parent / "digits.onnx.data").is_file()
    return out


@pytest.fixture(scope="session")
def cumsum_tflite(tmp_path_factory):
    """A real TFLite graph with one op XNNPACK does not take (CUMSUM between two delegated runs)."""
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16], tf.float32, name="x")])
        def f(self, x):
            y = tf.nn.relu(x * 2.0 + 1.0)
            return {"out": tf.nn.softmax(tf.math.cumsum(y, axis=1) * 3.0 + 1.0)}

    m = M()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.f.get_concrete_function()], m)
    out = tmp_path_factory.mktemp("cumsum") / "cumsum.tflite"
    out.write_bytes(conv.convert())
    return out


# -- a real sshd ---------------------------------------------------------------------------------

def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class Sshd:
    """A real sshd: ADDRESS it listens on (any 127.0.0.0/8 address), SFTP whether it offers the
    sftp subsystem (False: like many Dropbear builds), LOG_LEVEL its LogLevel (DEBUG1 logs each
    direct-tcpip forward, which shows a connection went through it as a jump host)."""

    def __init__(self, root: Path, address: str = "127.0.0.1", sftp: bool = True, log_level: str = "VERBOSE"):
        self.root = root
        self.address = address
        self.board_tmp = root / "board-tmp"  # the board's $TMPDIR, where edgekit-* folders go
        self.board_tmp.mkdir()
        self.port = _free_port(address)
        self.user = _user()
        self.host_pub = _keygen(root / "host_ed25519")
        self.user_key = root / "user_ed25519"
        (root / "authorized_keys").write_text(_keygen(self.user_key) + "\n")
        (root / "sshd_config").write_text(f"""
Port {self.port}
ListenAddress {address}
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
SetEnv TMPDIR={self.board_tmp}
{"Subsystem sftp internal-sftp" if sftp else ""}
LogLevel {log_level}
""")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True) if os.geteuid() == 0 else None
        self.log = open(root / "sshd.log", "w")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((address, self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        raise RuntimeError("sshd did not start: " + (root / "sshd.log").read_text())

    def session_pids(self) -> list[int]:
        """sshd's per-connection processes (children of the listener, and theirs)."""
        kids = {}
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    stat = (p / "stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    kids.setdefault(ppid, []).append(int(p.name))
                except (OSError, ValueError, IndexError):
                    pass  # the process exited while /proc was being read
        out, todo = [], list(kids.get(self.proc.pid, []))
        while todo:
            pid = todo.pop()
            try:
                if "sshd" in Path(f"/proc/{pid}/comm").read_text():
                    out.append(pid)
                    todo.extend(kids.get(pid, []))
            except OSError:
                pass  # exited meanwhile: nothing to kill
        return out

    def log_text(self) -> str:
        """What sshd logged so far."""
        self.log.flush()
        return (self.root / "sshd.log").read_text()

    def known_hosts_line(self) -> str:
        """This server's known_hosts entry."""
        return f"[{self.address}]:{self.port} {' '.join(self.host_pub.split()[:2])}"

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.board_tmp.glob("edgekit-*"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _user() -> str:
    import getpass

    return getpass.getuser()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not os.path.exists(SSHD):
        pytest.fail("OpenSSH server not installed: run scripts/system-deps.sh (apt-get install openssh-server)")
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sshd_nosftp(tmp_path_factory):
    """A real sshd whose config has no `Subsystem sftp` line (paramiko's open_sftp fails)."""
    server = Sshd(tmp_path_factory.mktemp("sshd-nosftp"), sftp=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jump_sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 used as a ProxyJump host; LogLevel DEBUG1 records each forward."""
    server = Sshd(tmp_path_factory.mktemp("sshd-jump"), log_level="DEBUG1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inner_sshd(tmp_path_factory):
    """A real sshd on 127.0.0.2: the board behind the jump host."""
    server = Sshd(tmp_path_factory.mktemp("sshd-inner"), address="127.0.0.2")
    yield server
    server.stop()


@pytest.fixture
def ssh_home(sshd, tmp_path, monkeypatch):
    """A HOME whose ~/.ssh/config names the board `board` (HostName, Port, User, IdentityFile,
    UserKnownHostsFile), with its host key already trusted."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    known = home / ".ssh" / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(sshd.host_pub.split()[:2])}\n")
    (home / ".ssh" / "config").write_text(f"""
Host board
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.user_key}
    UserKnownHostsFile {known}
""")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("EDGEKIT_SSH_PYTHON", raising=False)
    return home


@pytest.fixture(scope="session")
def board_python():
    """The Python the "board" runs: this venv's, which has numpy and ai-edge-litert."""
    return sys.executable


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory):
    """A Python on the board with numpy but no runtime at all (a venv + a folder holding only numpy)."""
    import numpy

    d = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d / "venv")], check=True)
    site = d / "site"
    site.mkdir()
    src = Path(numpy.__file__).parent
    (site / "numpy").symlink_to(src)
    if (src.parent / "numpy.libs").exists():
        (site / "numpy.libs").symlink_to(src.parent / "numpy.libs")
    pth = next((d / "venv" / "lib").glob("python3*")) / "site-packages" / "numpy-only.pth"
    pth.write_text(str(site) + "\n")
    return d / "venv" / "bin" / "python"
