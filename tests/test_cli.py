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
