"""The command line as a user meets it: fast help, version, exit codes."""

import subprocess
import sys

from tests.conftest import edgekit_cmd


def fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run CODE in a new interpreter (nothing imported yet), capturing its output as text."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_help_and_version_do_not_import_frameworks():
    code = (
        "import sys; from edgekit.cli import main\n"
        "for argv in (['--help'], ['--version'], ['convert', '--help'], ['validate', '--help'], ['profile', '--help'],\n"
        "             ['run', '--help'], ['report', '--help'], ['inspect', '--help'], ['devices', 'check', '--help'],\n"
        "             ['emulator', 'create', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit as e: assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('tensorflow', 'torch', 'executorch', 'ai_edge_litert', 'numpy', 'rich') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    p = fresh_python(code)
    assert p.returncode == 0, p.stderr + p.stdout


def test_console_script_and_module_entry_points():
    p = subprocess.run([*edgekit_cmd(), "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "edgekit, version" in p.stdout
    p = subprocess.run([sys.executable, "-m", "edgekit", "convert", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--quantize" in p.stdout and "--input-shape" in p.stdout


def test_usage_error_exit_code(cli):
    r = cli("convert", "m.keras", "--quantize", "int4")
    assert r.exit_code == 2 and "int4" in r.stderr


def test_help_lists_every_command_without_importing_them():
    code = (
        "import sys; from edgekit.cli import main\n"
        "commands = lambda: sorted(m for m in sys.modules if m.startswith('edgekit.commands.'))\n"
        "loaded = []\n"
        "for argv in (['--help'], ['report', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit as e: assert e.code in (0, None), e.code\n"
        "    loaded.append(commands())\n"
        "assert loaded == [['edgekit.commands.output'], ['edgekit.commands.output', 'edgekit.commands.report']], loaded\n"
    )
    p = fresh_python(code)
    assert p.returncode == 0, p.stderr + p.stdout
    for name in ("convert", "validate", "run", "report", "profile", "inspect", "devices", "emulator"):
        assert f"\n  {name} " in p.stdout


# ---- issue 13: option placement, the threads warning, run -o, the environment table -------------

def _quiet_devices_env(monkeypatch, tmp_path):
    """`edgekit devices` with no named targets and no adb server to ask."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setenv("EDGEKIT_TARGETS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free))


def test_global_flags_after_the_subcommand(cli, monkeypatch, tmp_path):
    _quiet_devices_env(monkeypatch, tmp_path)
    loud = cli("devices")
    assert loud.exit_code == 0 and "host" in loud.stderr
    for args in (("-q", "devices"), ("devices", "-q"), ("devices", "--quiet", "--json")):
        r = cli(*args)
        assert r.exit_code == 0 and r.stderr == "", (args, r)
    r = cli("devices", "--json", "-q")
    assert r.json()["devices"][0]["name"] == "host"
    # --debug after a (nested) subcommand shows the traceback, as before it
    for args in (("--debug", "devices", "check", "nowhere:1"), ("devices", "check", "nowhere:1", "--debug")):
        r = cli(*args)
        assert r.exit_code == 2 and "Traceback" in r.stderr and "Unknown target" in r.stderr, (args, r)
    r = cli("devices", "check", "nowhere:1")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    r = cli("report", tmp_path / "missing.json", "-v")
    assert r.exit_code == 2 and "No such option" not in r.stderr, r


def test_every_command_takes_the_global_flags():
    from edgekit.cli import ROUTES, cli as root

    def check(cmd, path):
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--debug", "-q", "--quiet", "-v", "--verbose"} <= opts, path
        for name, sub in getattr(cmd, "commands", {}).items():
            check(sub, f"{path} {name}")

    for name in ROUTES:
        check(root.get_command(None, name), name)


def test_threads_above_the_cores_warn_but_measure(cli, tmp_path):
    import os

    import onnx
    from onnx import TensorProto, helper

    from edgekit.commands.options import threads_warning

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "relu.onnx")
    cores = len(os.sched_getaffinity(0))
    r = cli("profile", tmp_path / "relu.onnx", "--threads", cores + 3, "--runs", "2", "--warmup", "0", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["threads"] == cores + 3  # measured as asked
    assert any(f"--threads {cores + 3} is more than the {cores} core(s)" in w for w in res["warnings"]), res["warnings"]
    assert f"--threads {cores + 3} is more than" in r.stderr
    assert threads_warning(cores, res) is None and threads_warning(None, res) is None
    assert "threads: 9" in threads_warning(9, {"target": "pi4", "device": {"cores": 4, "usable_cores": 2}},
                                           flag="threads:")


def test_run_takes_o_like_the_others(cli, tmp_path):
    r = cli("run", "--help")
    assert r.exit_code == 0 and "-o, --out DIR" in r.stdout
    r = cli("run", tmp_path / "missing.yaml", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "No such option" not in r.stderr and "missing.yaml" in r.stderr, r


def test_every_edgekit_variable_the_code_reads_is_documented():
    import re
    from pathlib import Path

    from edgekit.cli import ENVIRONMENT

    root = Path(__file__).resolve().parents[1]
    read = set()
    for folder in ("edgekit", "targets", "converters", "quantization"):
        for f in (root / folder).rglob("*.py"):
            read |= set(re.findall(r"""["'](_?EDGEKIT_[A-Z0-9_]+)["']""", f.read_text()))
    assert "EDGEKIT_TARGETS_FILE" in read and "EDGEKIT_ISOLATE" in read
    readme = (root / "README.md").read_text()
    table = re.findall(r"^\| `(_?EDGEKIT_[A-Z0-9_]+)` \|", readme, re.M)
    assert not read - set(table), f"EDGEKIT_ variables read by the code but not in the README table: {read - set(table)}"
    assert set(table) == set(ENVIRONMENT)
    p = fresh_python("from edgekit.cli import main\nmain(['--help'])")
    for name in ENVIRONMENT:
        assert name.startswith("_") or name in p.stdout, name
    assert "_EDGEKIT_COMPLETE=bash_source edgekit" in p.stdout and "_EDGEKIT_COMPLETE=bash_source edgekit" in readme


def test_pytorch_input_shape_with_an_unknown_name_lists_the_inputs(cli, tmp_path):
    (tmp_path / "net.py").write_text(
        "import torch\n\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, image, mask):\n"
        "        return image * mask\n")
    for shapes in (["img=1x4"], ["image=1x4", "msk=1x4"]):  # the typo, even when another input lacks a shape
        args = [a for s in shapes for a in ("--input-shape", s)]
        r = cli("convert", f"{tmp_path / 'net.py'}:Net", *args, "--to", "torchscript", "-o", tmp_path / "n.ptl")
        typo = shapes[-1].split("=")[0]
        assert r.exit_code == 2, r
        assert f"--input-shape names {typo!r}" in r.stderr and "takes: image, mask" in r.stderr, r.stderr
        assert "--input-shape image=DIMS --input-shape mask=DIMS" in r.stderr
    assert not (tmp_path / "n.ptl").exists()


def test_emulator_create_shows_its_stages_as_every_command_does(cli, monkeypatch):
    """`emulator create` logged through rich's Console.log: a clock, 160-column padding and
    `qemu.py:127` at the end of each line in a CI log. Its stages are plain `[  1.2s] step` lines."""
    import re

    from edgekit.errors import TargetUnreachable
    from edgekit.targets import qemu

    def create(kind, dest, runtimes, force, log):
        log("Unpacking arm64 Debian bookworm")
        raise TargetUnreachable("mmdebstrap could not build the arm64 root filesystem.", "Check the mirror.")

    monkeypatch.setattr(qemu, "create", create)
    r = cli("emulator", "create", "rpi")
    assert r.exit_code == 4, r
    assert re.search(r"^\[\s*\d+\.\ds\] Unpacking arm64 Debian bookworm$", r.stderr, re.M), r.stderr
    assert ".py:" not in r.stderr and "  " * 20 not in r.stderr, r.stderr
