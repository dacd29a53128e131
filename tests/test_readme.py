"""The README's every command block works as written (issue 13).

Its ```sh and ```python blocks are read from README.md and run in order, in one folder filled by
`examples/readme_files.py` (the README names it before the first block that needs it), through
the real `edgekit` console script on the venv's PATH. A line that works on this computer must
exit 0. A line that needs hardware (an SSH board, the emulated arm64 board, a phone, a Coral)
cannot succeed here: it must fail cleanly, with the exit code of a missing tool (3) or an
unreachable device (4) and one paragraph without a traceback, never a usage error (2), which
proves its syntax. Set-up lines (scripts/*.sh, pip install, source) are checked for what they
name: the scripts, files and extras exist. A line of a kind this file does not know fails the
test, so a new README line is never left unchecked."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.errors import ENVIRONMENT, UNREACHABLE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: python and the edgekit console script
HARDWARE = re.compile(r"ssh://|qemu-arm64|\bemulator create\b|\badb\b|\bcoral\b")
MAKE_FILES = re.compile(r"^python (examples/readme_files\.py) (\S+) && cd (\S+)$")
STAGE = re.compile(r"^\[\s*\d+\.\ds\] ")  # a progress line in a CI log
STEP_TIMEOUT = 300  # seconds for one line: none takes a minute, a hang (a board's name never resolving) fails
SOURCE_LOCATION = re.compile(r"\b\w+\.py:\d+\s*$")  # rich's Console.log suffix: not for users


def readme_blocks(text: str | None = None) -> list[tuple[str, int, str]]:
    """The fenced blocks of README.md as (language, line number of the fence, body)."""
    text = README.read_text() if text is None else text
    return [(m.group(1), text[: m.start()].count("\n") + 1, m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


def sh_lines() -> list[tuple[int, str]]:
    """Every command line of the ```sh blocks as (README line number, line), comments dropped."""
    out = []
    for lang, start, body in readme_blocks():
        if lang == "sh":
            for i, line in enumerate(body.splitlines(), start + 1):
                if shlex.split(line, comments=True):
                    out.append((i, line.strip()))
    return out


def kind(line: str) -> str:
    """How a README shell line is checked: edgekit (run), hardware (run, must fail cleanly),
    make-files (the files script), script, pip, source (checked for what they name)."""
    words = shlex.split(line, comments=True)
    if words[0] == "edgekit":
        return "hardware" if HARDWARE.search(" ".join(words)) else "edgekit"
    if MAKE_FILES.match(" ".join(words)):
        return "make-files"
    if words[0].startswith("scripts/") and len(words) == 1:
        return "script"
    if words[:2] == ["pip", "install"]:
        return "pip"
    if words[0] == "source":
        return "source"
    return "unknown"


def test_every_readme_shell_line_is_one_this_test_checks():
    unknown = [(n, line) for n, line in sh_lines() if kind(line) == "unknown"]
    assert not unknown, f"README lines tests/test_readme.py does not know how to check: {unknown}"
    kinds = [kind(line) for _, line in sh_lines()]
    assert kinds.count("make-files") == 1 and kinds.index("make-files") < kinds.index("edgekit"), \
        "the README names examples/readme_files.py once, before the first edgekit line"


def _tomllib():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the backport edgekit depends on there
        import tomli as tomllib
    return tomllib


def test_setup_lines_name_what_exists():
    """scripts/*.sh exist and are executable; `source .venv/bin/activate` is the venv
    scripts/setup.sh makes; `pip install -e '.[EXTRA]'` names extras pyproject.toml declares, and
    the files it names (-c constraints) exist."""
    extras = _tomllib().loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    checked = set()
    for n, line in sh_lines():
        words, k = shlex.split(line, comments=True), kind(line)
        if k == "script":
            script = ROOT / words[0]
            assert script.is_file() and os.access(script, os.X_OK), f"README:{n}: {words[0]} is not an executable script"
            checked.add(k)
        elif k == "source":
            assert words == ["source", ".venv/bin/activate"], f"README:{n}: {line}"
            assert '-m venv .venv' in (ROOT / "scripts" / "setup.sh").read_text(), "scripts/setup.sh no longer makes .venv"
            if sys.prefix != sys.base_prefix:  # run from a venv (scripts/test.sh's .venv): it has the script
                assert (Path(sys.prefix) / "bin" / "activate").is_file()
            checked.add(k)
        elif k == "pip":
            args = iter(words[2:])
            for word in args:
                if word == "-e":
                    spec = next(args)
                    m = re.fullmatch(r"\.\[([\w,-]+)\]", spec)
                    assert m, f"README:{n}: installs {spec!r}, not this clone with extras"
                    missing = [e for e in m.group(1).split(",") if e not in extras]
                    assert not missing, f"README:{n}: extras {missing} are not in pyproject.toml"
                elif word == "-c":
                    assert (ROOT / next(args)).is_file(), f"README:{n}: {line}"
                elif word == "--extra-index-url":
                    assert next(args).startswith("https://"), f"README:{n}: {line}"
                else:
                    pytest.fail(f"README:{n}: pip argument {word!r} is not one this test checks")
            checked.add(k)
    assert checked == {"script", "source", "pip"}, checked


def test_the_pipeline_block_is_the_bundled_pipeline_file():
    """The README shows examples/digits/edgekit.yaml as "the bundled" file: same keys and values."""
    import yaml

    block = next(body for lang, _, body in readme_blocks() if lang == "yaml" and body.startswith("model:"))
    assert yaml.safe_load(block) == yaml.safe_load((ROOT / "examples" / "digits" / "edgekit.yaml").read_text())


def test_the_named_targets_block_is_a_targets_file_edgekit_reads(tmp_path):
    from edgekit.targets import names

    block = next(body for lang, _, body in readme_blocks() if lang == "toml")
    (tmp_path / "targets.toml").write_text(block)
    assert names.load(tmp_path / "targets.toml") == _tomllib().loads(block)["targets"]


def _env(work: Path) -> dict:
    """The user's environment with the venv first on PATH; the emulated board's cache is an
    empty folder and its Debian mirror a closed local port, so `emulator create` can neither
    find a board built earlier on this machine nor download one; no named targets."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(BIN.parent),
               EDGEKIT_CACHE=str(work.parent / "cache"), EDGEKIT_DEBIAN_MIRROR="http://127.0.0.1:9/debian",
               EDGEKIT_TARGETS_FILE=str(work.parent / "targets.toml"))
    env.pop("EDGEKIT_ISOLATE", None)  # the default: convert's framework work in a child process
    return env


def _problems(n: int, line: str, p: subprocess.CompletedProcess, hardware: bool) -> list[str]:
    """What is wrong with how README line N ran (empty when it ran as the README promises)."""
    where, problems = f"README:{n}: {line}", []
    if "Traceback" in p.stderr or "Traceback" in p.stdout:
        problems.append(f"{where}: printed a traceback")
    located = [l for l in p.stderr.splitlines() if SOURCE_LOCATION.search(l) and "error:" not in l]
    if located:
        problems.append(f"{where}: lines with a source location: {located[:3]}")
    if not hardware:
        if p.returncode != 0:
            problems.append(f"{where}: exit {p.returncode}\n{p.stderr[-3000:]}")
        elif "--json" in line:
            try:
                json.loads(p.stdout)
            except ValueError:
                problems.append(f"{where}: --json printed no JSON document on stdout: {p.stdout[:500]!r}")
        return problems
    if p.returncode not in (ENVIRONMENT, UNREACHABLE):
        problems.append(f"{where}: needs hardware, so it must exit {ENVIRONMENT} (missing tool) or "
                        f"{UNREACHABLE} (unreachable), not {p.returncode}\n{p.stderr[-3000:]}")
    # one paragraph: `error: message`, then the hint's indented lines, nothing after it
    rest = [l for l in p.stderr.splitlines() if not STAGE.match(l) and not l.startswith("warning:")]
    first = next((i for i, l in enumerate(rest) if l.startswith("error: ")), None)
    if first is None or any(not l.startswith("  ") or not l.strip() for l in rest[first + 1:]):
        problems.append(f"{where}: not one error paragraph:\n{p.stderr[-3000:]}")
    if "--json" in line:
        try:
            err = json.loads(p.stdout)["error"]
            if err["exit_code"] != p.returncode:
                problems.append(f"{where}: the JSON error says exit {err['exit_code']}, the process {p.returncode}")
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: --json printed no error object on stdout: {p.stdout[:500]!r}")
    return problems


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    """The README's ```sh and ```python blocks, in order, in one folder made by the files script
    (3-4 min on two free cores, 6 when they are shared: two dozen processes that each import
    TensorFlow or PyTorch)."""
    import importlib.util

    assert (BIN / "edgekit").is_file(), f"no edgekit console script beside {sys.executable}"
    if not importlib.util.find_spec("tempocnn"):
        pytest.skip("tempocnn is not installed (scripts/test.sh installs it): the README's tempo.h5 comes from it")
    work, env = tmp_path / "readme", _env(tmp_path)
    problems, timings = [], []
    steps = [(n, "sh", line) for n, line in sh_lines() if kind(line) in ("make-files", "edgekit", "hardware")]
    steps += [(n, "python", body) for lang, n, body in readme_blocks() if lang == "python"]
    steps.sort()
    for n, lang, code in steps:
        t0 = time.monotonic()
        if lang == "python":
            script = tmp_path / f"readme_{n}.py"
            script.write_text(code)
            p = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                               timeout=STEP_TIMEOUT)
            problems += _problems(n, "the python block", p, hardware=False)
            if "edgekit.run(" in code and not (work / "edgekit-out" / "report.json").is_file():
                problems.append(f"README:{n}: edgekit.run wrote no edgekit-out/report.json")
        elif kind(code) == "make-files":
            m = MAKE_FILES.match(" ".join(shlex.split(code, comments=True)))
            assert m.group(2) == m.group(3), f"README:{n}: makes the files in {m.group(2)} but enters {m.group(3)}"
            p = subprocess.run([sys.executable, str(ROOT / m.group(1)), str(work)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=STEP_TIMEOUT)
            assert p.returncode == 0, f"README:{n}: {code}\n{p.stderr[-3000:]}"
        else:
            p = subprocess.run(["bash", "-c", code], cwd=work, env=env, capture_output=True, text=True,
                               timeout=STEP_TIMEOUT)
            problems += _problems(n, code, p, hardware=kind(code) == "hardware")
        timings.append(f"{time.monotonic() - t0:6.1f} s  README:{n}: {code.splitlines()[-1][:90]}")
    print("\n".join(timings))
    assert not problems, "\n\n".join(problems)
