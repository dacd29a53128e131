"""Every hostile or mistaken input of issue 12 §2 and DESIGN.md's catalogue, as one table
(cases.py) run by one test: the documented exit code, the first line of the one `error:`
paragraph, no traceback, nothing left behind (files beside the output, the private TMPDIR,
processes), inputs and an existing output unchanged, and with --json an error object on stdout."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import edgekit_cmd, run_cli
from tests.reliability.cases import CASES, World


def snapshot(folder: Path) -> dict:
    """{relative path: content digest, 'dir', 'fifo', 'link -> target'} of everything under FOLDER
    (symlinks and special files are not followed or read)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "dir"
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def children() -> set:
    """PIDs of this process's live children (a leftover converter or profiling process)."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            pids |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:  # the thread ended meanwhile
            continue
    return {p for p in pids if Path(f"/proc/{p}").exists()}


def run_process(argv, cwd, tmpdir, timeout):
    """`edgekit ARGV` in its own session with TMPDIR private; fails the test when it outlives
    TIMEOUT or leaves a process of its group behind. Returns (exit code, stdout, stderr, seconds)."""
    env = {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "200"}
    t0 = time.monotonic()
    p = subprocess.Popen(edgekit_cmd() + argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"edgekit {' '.join(argv)} still running after {timeout} s (a hang)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("a process of edgekit's group outlived it")
    return p.returncode, out, err, time.monotonic() - t0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reliability(case, assets, tmp_path, monkeypatch):
    work, tmpdir = tmp_path / "work", tmp_path / "tmpdir"
    work.mkdir()
    tmpdir.mkdir()
    world = World(work, assets, monkeypatch)
    if case.setup is not None:
        case.setup(world)
    names = {k: str(v) for k, v in assets.items()}
    argv = [a.format(t=work, **names) for a in case.argv]
    before, assets_before = snapshot(work), snapshot(assets["dir"])
    if case.process:
        code, out, err, seconds = run_process(argv, work, tmpdir, case.timeout)
    else:
        monkeypatch.setenv("TMPDIR", str(tmpdir))
        monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
        kids = children()
        r = run_cli(*argv, cwd=work)
        code, out, err = r.exit_code, r.stdout, r.stderr
        assert children() <= kids, "a child process was left running"
    shown = f"\nexit {code}\nstdout: {out[-2000:]}\nstderr: {err[-3000:]}"
    assert code == case.code, shown
    assert "Traceback" not in err and "Traceback" not in out, shown
    errors = [ln for ln in err.splitlines() if ln.lower().startswith("error:")]
    if os.environ.get("RELIABILITY_SHOW"):  # review the messages: RELIABILITY_SHOW=1 pytest -s
        print(f"\n[{case.id}] exit {code}: " + err.strip().replace(str(work), "{t}"))
    if case.code == 0:
        assert not errors, shown
    else:
        assert len(errors) == 1, "one error paragraph expected" + shown
        assert case.first.format(t=work) in errors[0], shown
    if "--json" in argv and case.code != 0:
        assert json.loads(out)["error"]["exit_code"] == case.code, shown
    after = snapshot(work)
    created = {k for k in after if k not in before}
    assert created == {c.format(t=work) for c in case.creates}, f"files left: {created}" + shown
    assert {k: v for k, v in after.items() if k in before} == before, "an input or existing output changed" + shown
    assert snapshot(assets["dir"]) == assets_before, "a shared input changed" + shown
    assert not list(tmpdir.iterdir()), f"left in TMPDIR: {list(tmpdir.iterdir())}" + shown


def test_table_size():
    """Issue 12 asks for at least 80 cases; ids are unique."""
    ids = [c.id for c in CASES]
    assert len(ids) >= 80 and len(set(ids)) == len(ids)


def test_readme_limits_table_is_the_limits_table():
    """README's "Limits" table lists edgekit.limits.LIMITS, value and meaning, in order."""
    from edgekit.limits import LIMITS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = [ln for ln in readme.splitlines() if ln.startswith("| `max_")]
    assert rows == [f"| `{k}` | {v:,} | {what} |" for k, (v, what) in LIMITS.items()]


def test_debug_shows_the_traceback_of_a_bug(assets, monkeypatch):
    """--debug keeps the traceback the boundary otherwise hides; --json adds the error object."""
    from edgekit import report_files

    def broken(report):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(report_files, "to_markdown", broken)
    r = run_cli("--debug", "report", assets["report_json"])
    assert r.exit_code == 1 and "Traceback" in r.stderr and "ZeroDivisionError" in r.stderr, r
    r = run_cli("report", assets["report_json"], "--format", "md")
    assert r.exit_code == 1 and "Traceback" not in r.stderr, r


def test_json_error_object_for_a_bug(assets, monkeypatch):
    """A bug under --json: exit 1 and {"error": {..., "kind": "bug"}} on stdout."""
    from edgekit import build

    def broken(*a, **k):
        raise KeyError("missing")

    monkeypatch.setattr(build, "convert", broken)
    r = run_cli("convert", assets["tiny_keras"], "--json")
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 1 and err["kind"] == "bug" and err["exit_code"] == 1 and "KeyError" in err["message"], r
