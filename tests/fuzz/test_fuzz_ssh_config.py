"""Fuzz the ~/.ssh/config reader of SSH targets (targets.ssh_config.lookup and parse_jumps): the
user's file with Host/Match blocks, Include, ProxyJump chains and the options edgekit honours or
refuses — with lines dropped, shuffled, cut, quotes unbalanced, values of the wrong kind.
Contract: the options for the host, or BadInput (exit 2) naming the file — never another
exception (the target then reports a traceback instead of "fix this line").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import strategies as st

from tests.fuzz._fuzz import mutated_text, outcome, tiers

paramiko = pytest.importorskip("paramiko")
from edgekit.targets import ssh_config  # noqa: E402

CONFIG = """\
Host *
  ServerAliveInterval 30
  IdentitiesOnly yes

Host jump
  HostName 127.0.0.2
  User pi
  Port 2222

Host board rpi-*
  HostName 192.168.1.20
  User pi
  IdentityFile ~/.ssh/id_ed25519
  ProxyJump jump,ssh://admin@gw:22
  StrictHostKeyChecking accept-new
  Include conf.d/*.conf

Match host board user pi
  ConnectTimeout 5

Match originalhost board exec "true"
  Compression yes
"""
INCLUDED = "Host board\n  Port 2200\n  ProxyCommand ssh -W %h:%p jump\n"
LINES = ["Host", "Host 'board", 'Host "a b" c', "Match", "Match host", "Match canonical", "Match final all",
         "Match address 10.0.0.0/8", "Match !host x", "Include", "Include 'conf.d/*", "Include %d/x", "Include ${HOME}/x",
         "Include ~/.ssh/config", "Include config", "Port", "Port x", "Port 99999999999999999999", "Port -1",
         "ProxyJump", "ProxyJump a:b:c", "ProxyJump ,", "ProxyJump @", "ProxyJump ssh://[::1", "ProxyJump none",
         "ProxyCommand none", "HostName %h%h%", "User %Z", "BindAddress 1.2.3.4", "Ciphers aes128-ctr",
         "AddressFamily any", "IdentityAgent /tmp/x.sock", "IdentityAgent none", "=", "Host=board", "  HostName = x",
         "CanonicalizeHostname yes", "CanonicalDomains example.invalid", "Tunnel yes", "\0", "Host \u202eboard"]


@st.composite
def ssh_files(draw):
    """The main config and one included file, each damaged or with odd lines inserted."""
    main = draw(st.one_of(st.just(CONFIG), mutated_text(CONFIG)))
    lines = main.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), "  " * draw(st.integers(0, 1)) + draw(
            st.sampled_from(LINES) | st.text(max_size=30)))
    included = draw(st.one_of(st.just(INCLUDED), mutated_text(INCLUDED), st.sampled_from(LINES)))
    return "\n".join(lines) + "\n", included, draw(st.sampled_from(["board", "rpi-1", "jump", "other", ""]))


# Crashes this fuzzing found in targets/ssh_config.py, now BadInput: each kept as a regression below.
KNOWN = ()


def _lookup_and_route(alias):
    cfg = ssh_config.lookup(alias)
    return ssh_config.route(cfg)


def check_ssh_config(case):
    main, included, alias = case
    with tempfile.TemporaryDirectory() as home:
        ssh = Path(home) / ".ssh"
        (ssh / "conf.d").mkdir(parents=True)
        (ssh / "config").write_text(main, errors="surrogatepass")
        (ssh / "conf.d" / "a.conf").write_text(included, errors="surrogatepass")
        old = os.environ.get("HOME")
        os.environ["HOME"] = home
        try:
            outcome("ssh_config.lookup+route", _lookup_and_route, alias, known=KNOWN)
        finally:
            os.environ["HOME"] = old if old is not None else ""


def check_parse_jumps(value):
    outcome("ssh_config.parse_jumps", ssh_config.parse_jumps, value, known=KNOWN)


test_ssh_config, test_ssh_config_slow = tiers(check_ssh_config, slow=600, case=ssh_files(), examples=[
    (CONFIG, INCLUDED, "board"),
    (CONFIG.replace("Include conf.d/*.conf", "Include 'conf.d/*.conf"), INCLUDED, "board"),  # shlex: no closing quotation
])
test_parse_jumps, test_parse_jumps_slow = tiers(check_parse_jumps, slow=400, case=st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["jump", "pi@jump", "jump:22", "ssh://a@b:2", "[::1]:22", "a:b:c", "@", ":", "",
                              "ssh://[::1", "x:99999999", "ssh://a/b", "a?b", "é@ü:1"]), max_size=10).map(",".join)),
    examples=["ssh://[::1", "x:99999999", "[]"])


def test_regression_include_with_unbalanced_quote(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host board\n  Include 'conf.d/*.conf\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ssh_config.BadInput):
        ssh_config.lookup("board")


def test_regression_proxyjump_with_broken_ipv6():
    with pytest.raises(ssh_config.BadInput):
        ssh_config.parse_jumps("ssh://[::1")


def test_regression_include_with_nul_byte(tmp_path, monkeypatch):
    (tmp_path / ".ssh" / "conf.d").mkdir(parents=True)
    (tmp_path / ".ssh" / "config").write_text("Host board\n  Include conf.d\0/*.conf\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ssh_config.BadInput):
        ssh_config.lookup("board")


def test_regression_canonicalize_without_domains(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host board\n  CanonicalizeHostname yes\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ssh_config.BadInput):
        ssh_config.lookup("board")
