"""SSH boards as they are: no SFTP subsystem, a jump host, Include and Match in ~/.ssh/config
(issue 12, section 4). Every server here is a real OpenSSH sshd on a loopback address."""

from __future__ import annotations

import re
import textwrap

import pytest

from edgekit.errors import BadInput, TargetUnreachable
from edgekit.targets import ssh_config
from edgekit.targets.ssh import SSHTarget


def _home(tmp_path, monkeypatch, servers, config: str):
    """HOME with known_hosts trusting SERVERS and ~/.ssh/config = CONFIG."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("".join(s.known_hosts_line() + "\n" for s in servers))
    (home / ".ssh" / "config").write_text(textwrap.dedent(config))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("EDGEKIT_SSH_PYTHON", raising=False)
    return home


def _entry(name, server, extra=""):
    return textwrap.dedent(f"""
    Host {name}
        HostName {server.address}
        Port {server.port}
        User {server.user}
        IdentityFile {server.user_key}
    """) + textwrap.indent(textwrap.dedent(extra), "    ")


def _clean_error(r, code):
    assert r.exit_code == code, r
    assert "Traceback" not in r.stderr, r.stderr


def _forwards(server, to) -> int:
    """How many direct-tcpip forwards to TO (another Sshd) SERVER's log shows."""
    return len(re.findall(rf"direct.tcpip.*{re.escape(to.address)} port {to.port}\b", server.log_text()))


# -- no SFTP subsystem ---------------------------------------------------------------------------

def test_board_without_sftp_really_has_none(sshd_nosftp, tmp_path, monkeypatch):
    """The server refuses SFTP (as many Dropbear builds do), yet the board works over exec."""
    import paramiko

    _home(tmp_path, monkeypatch, [sshd_nosftp], _entry("bare", sshd_nosftp))
    target = SSHTarget("ssh://bare")
    client = target.connect()
    try:
        with pytest.raises(paramiko.SSHException):
            client.open_sftp()
    finally:
        client.close()
    src = tmp_path / "payload.bin"
    src.write_bytes(bytes(range(256)) * 1000 + b"\n'$(touch /tmp/x)'")
    with target.board() as b:
        assert b.sftp is None
        d = b.mkdtemp()
        remote = b.put(src, d, "a file with 'quotes' $HOME.bin")
        back = tmp_path / "back.bin"
        b.get(remote, back)
        assert back.read_bytes() == src.read_bytes()
        with pytest.raises(TargetUnreachable, match="cannot copy"):
            b.put(src, d + "/no such folder")
        with pytest.raises(TargetUnreachable, match="No such file"):
            b.get(d + "/missing", tmp_path / "missing")
        assert not (tmp_path / "missing").exists()
        b.rmtree(d)
    assert sshd_nosftp.leftovers() == []


def test_check_profile_validate_without_sftp(cli, sshd_nosftp, tmp_path, monkeypatch, board_python, digits_tflite,
                                             torch_digits, digits_ptl):
    _home(tmp_path, monkeypatch, [sshd_nosftp], _entry("bare", sshd_nosftp))
    url = f"ssh://bare?python={board_python}"
    r = cli("devices", "check", url, "--json")
    assert r.exit_code == 0, r
    assert r.json()["formats"]["tflite"]["available"]
    assert sshd_nosftp.leftovers() == []
    r = cli("profile", digits_tflite, "--target", url, "--runs", "10", "--json")
    assert r.exit_code == 0, r
    assert r.json()["latency_ms"]["p50"] > 0
    assert sshd_nosftp.leftovers() == []
    # validate on the board fetches the outputs back: `get` through the exec channel
    r = cli("validate", *torch_digits["args"], digits_ptl, "--data", torch_digits["test"], "--samples", "20",
            "--target", url, "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["passed"]
    assert sshd_nosftp.leftovers() == []
    assert "subsystem request for sftp" in sshd_nosftp.log_text()  # asked, refused, fell back


# -- ProxyJump -----------------------------------------------------------------------------------

def test_proxyjump(cli, jump_sshd, inner_sshd, tmp_path, monkeypatch, board_python, digits_tflite):
    """The board listens on 127.0.0.2; edgekit reaches it through the jump host's direct-tcpip channel,
    with the jump host's own config entry (its port, user, key)."""
    _home(tmp_path, monkeypatch, [jump_sshd, inner_sshd],
          _entry("board", inner_sshd, "ProxyJump jump\n") + _entry("jump", jump_sshd))
    before = _forwards(jump_sshd, inner_sshd)
    r = cli("profile", digits_tflite, "--target", f"ssh://board?python={board_python}", "--runs", "10", "--json")
    assert r.exit_code == 0, r
    assert r.json()["target"] == "ssh://board"
    assert _forwards(jump_sshd, inner_sshd) == before + 1  # the jump host forwarded the one connection
    assert inner_sshd.leftovers() == [] and jump_sshd.leftovers() == []


def test_proxyjump_chain_and_url_form(cli, jump_sshd, inner_sshd, tmp_path, monkeypatch, board_python):
    """`ProxyJump a,b`: a is reached directly, b through a, the board through b (here a and b are the
    same server under two names, so its log shows both forwards)."""
    _home(tmp_path, monkeypatch, [jump_sshd, inner_sshd],
          _entry("board", inner_sshd, f"ProxyJump jump,ssh://{jump_sshd.user}@hop2\n") + _entry("jump", jump_sshd)
          + _entry("hop2", jump_sshd))
    to_hop, to_board = _forwards(jump_sshd, jump_sshd), _forwards(jump_sshd, inner_sshd)
    r = cli("devices", "check", f"ssh://board?python={board_python}", "--json")
    assert r.exit_code == 0, r
    assert _forwards(jump_sshd, jump_sshd) == to_hop + 1 and _forwards(jump_sshd, inner_sshd) == to_board + 1
    assert inner_sshd.leftovers() == []


def test_proxyjump_errors(cli, jump_sshd, inner_sshd, tmp_path, monkeypatch, board_python, digits_tflite):
    """The jump host down: exit 4 naming it (today's silent direct connection would have succeeded, the
    board itself being up); the board down behind a working jump host: exit 4; a bad entry: exit 2."""
    closed = jump_sshd.port + 1 if jump_sshd.port < 65535 else jump_sshd.port - 1
    url = f"ssh://board?python={board_python}"
    _home(tmp_path, monkeypatch, [jump_sshd, inner_sshd],
          _entry("board", inner_sshd, f"ProxyJump {jump_sshd.user}@127.0.0.1:{closed}\n"))
    r = cli("profile", digits_tflite, "--target", url, "--runs", "3")
    _clean_error(r, 4)
    assert "jump host" in r.stderr and "cannot reach" in r.stderr
    cfg = _entry("board", inner_sshd, "ProxyJump jump\n").replace(f"Port {inner_sshd.port}", f"Port {closed}")
    (tmp_path / "home" / ".ssh" / "config").write_text(cfg + _entry("jump", jump_sshd))
    r = cli("devices", "check", url)
    _clean_error(r, 4)
    assert "the jump host jump cannot reach" in r.stderr
    (tmp_path / "home" / ".ssh" / "config").write_text(_entry("board", inner_sshd, "ProxyJump jump:notaport\n"))
    r = cli("devices", "check", url)
    _clean_error(r, 2)
    assert "ProxyJump" in r.stderr
    assert inner_sshd.leftovers() == []


def test_proxycommand_and_proxyjump_first_one_wins(cli, jump_sshd, inner_sshd, tmp_path, monkeypatch,
                                                   board_python):
    """ProxyCommand (here the OpenSSH client's -W through the jump host) and ProxyJump compete: the
    one given first is used, the other ignored, as ssh_config(5) says."""
    home = _home(tmp_path, monkeypatch, [jump_sshd, inner_sshd], "")
    command = (f"ssh -F /dev/null -i {jump_sshd.user_key} -o BatchMode=yes -o UserKnownHostsFile={home}/.ssh/"
               f"known_hosts -p {jump_sshd.port} {jump_sshd.user}@127.0.0.1 -W %h:%p")
    url = f"ssh://board?python={board_python}"
    for first, second in ((f"ProxyCommand {command}", "ProxyJump nowhere.invalid:1"),
                          ("ProxyJump jump", "ProxyCommand false")):
        (home / ".ssh" / "config").write_text(_entry("board", inner_sshd, f"{first}\n{second}\n")
                                              + _entry("jump", jump_sshd))
        before = _forwards(jump_sshd, inner_sshd)
        r = cli("devices", "check", url, "--json")
        assert r.exit_code == 0, (first, r)
        assert _forwards(jump_sshd, inner_sshd) == before + 1, first
    assert inner_sshd.leftovers() == []


# -- Include and Match ---------------------------------------------------------------------------

def test_include_defines_the_board(cli, sshd, tmp_path, monkeypatch, board_python):
    """`Include conf.d/*.conf` (relative to ~/.ssh, a glob) brings in the board's Host entry."""
    home = _home(tmp_path, monkeypatch, [sshd], "Include conf.d/*.conf\n")
    (home / ".ssh" / "conf.d").mkdir()
    (home / ".ssh" / "conf.d" / "boards.conf").write_text(_entry("board", sshd))
    r = cli("devices", "check", f"ssh://board?python={board_python}", "--json")
    assert r.exit_code == 0, r
    assert r.json()["reachable"]


def test_include_and_match_follow_openssh(tmp_path, monkeypatch):
    """OpenSSH's own regression table for Include (regress/cfginclude.sh), evaluated by lookup()."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (home / ".ssh" / "config").write_text(textwrap.dedent("""
        Match host a
            Hostname aa
        Match host b
            Hostname bb
            Include ~/.ssh/inc.*
        Match host c
            Include inc.*
            Hostname cc
        Match host m
            Include inc.*
        Host d
            Hostname dd
        Host e
            Hostname ee
            Include inc.*
        Host f
            Include inc.*
            Hostname ff
        Host n
            Include inc.*
        """))
    (home / ".ssh" / "inc.0").write_text("Match host xxxxxx\n")
    (home / ".ssh" / "inc.1").write_text("".join(f"Match host {h}\n Hostname {h * 3}\n" for h in "abc")
                                         + "".join(f"Host {h}\n Hostname {h * 3}\n" for h in "def"))
    (home / ".ssh" / "inc.2").write_text("".join(f"Match host {h}\n Hostname {h * 4}\n" for h in "abc")
                                         + "".join(f"Host {h}\n Hostname {h * 4}\n" for h in "def")
                                         + "Match all\n Hostname xxxx\n")
    want = {"a": "aa", "b": "bb", "c": "ccc", "d": "dd", "e": "ee", "f": "fff", "m": "xxxx", "n": "xxxx", "x": "x"}
    assert {h: ssh_config.lookup(h)["hostname"] for h in want} == want
    # the URL's user wins over the file and is what `Match user` sees
    (home / ".ssh" / "config").write_text("Match user alice\n  Port 2222\nHost *\n  User bob\n  Port 22\n")
    assert ssh_config.lookup("x", user="alice")["port"] == "2222"
    assert ssh_config.lookup("x")["port"] == "22" and ssh_config.lookup("x")["user"] == "bob"
    (home / ".ssh" / "config").write_text("Include config\n")
    with pytest.raises(BadInput, match="Include"):
        ssh_config.lookup("x")


def test_match_is_honoured(cli, sshd, tmp_path, monkeypatch, board_python):
    """`Match originalhost board` + `Match host 127.0.0.1 user ...` as paramiko evaluates them."""
    cfg = f"""
    Match originalhost board
        HostName 127.0.0.1
        Port {sshd.port}
    Match host 127.0.0.1 localuser {sshd.user}
        User {sshd.user}
        IdentityFile {sshd.user_key}
    """
    _home(tmp_path, monkeypatch, [sshd], cfg)
    r = cli("devices", "check", f"ssh://board?python={board_python}", "--json")
    assert r.exit_code == 0, r


@pytest.mark.parametrize("line, named", [
    ("Match localnetwork 10.0.0.0/8", "Match localnetwork"),
    ("Match tagged ci", "Match tagged"),
    ("Match originalhost board version OpenSSH_9*", "Match version"),
    ('Match originalhost board exec "true"', "Match exec"),
])
def test_match_not_evaluable_is_refused(cli, sshd, tmp_path, monkeypatch, board_python, line, named):
    home = _home(tmp_path, monkeypatch, [sshd], _entry("board", sshd) + f"{line}\n    Port 1\n")
    r = cli("devices", "check", f"ssh://board?python={board_python}")
    _clean_error(r, 2)
    cfg = home / ".ssh" / "config"
    lineno = cfg.read_text().splitlines().index(line) + 1
    assert named in r.stderr and f"{cfg}:{lineno}" in r.stderr, r.stderr
    assert sshd.leftovers() == []


@pytest.mark.parametrize("option", ["HostKeyAlias other", "BindAddress 127.0.0.3", "Ciphers aes128-ctr",
                                    "AddressFamily inet6", "IdentityAgent /tmp/agent.sock"])
def test_unhonoured_connection_option_is_refused(cli, sshd, tmp_path, monkeypatch, board_python, option):
    _home(tmp_path, monkeypatch, [sshd], _entry("board", sshd, option + "\n"))
    r = cli("devices", "check", f"ssh://board?python={board_python}")
    _clean_error(r, 2)
    assert option.split()[0] in r.stderr, r.stderr
    # for another host, the same option is no obstacle
    _home(tmp_path / "2", monkeypatch, [sshd], _entry("board", sshd) + f"Host elsewhere\n    {option}\n")
    r = cli("devices", "check", f"ssh://board?python={board_python}")
    assert r.exit_code == 0, r


def test_unreadable_values_are_bad_input(cli, sshd, tmp_path, monkeypatch, board_python):
    """A port or timeout that is not a number, an unparsable line: exit 2 naming it, no traceback."""
    for extra, named in (("ConnectTimeout soon", "connecttimeout"), ("Port twenty-two", "port")):
        _home(tmp_path / extra.split()[0], monkeypatch, [sshd], _entry("board", sshd).replace(
            f"Port {sshd.port}", extra if extra.startswith("Port") else f"Port {sshd.port}\n    {extra}"))
        r = cli("devices", "check", f"ssh://board?python={board_python}")
        _clean_error(r, 2)
        assert named in r.stderr, r.stderr
    _home(tmp_path / "junk", monkeypatch, [sshd], _entry("board", sshd) + "Junk\n")
    r = cli("devices", "check", f"ssh://board?python={board_python}")
    _clean_error(r, 2)
    assert "Junk" in r.stderr
