"""Packaging and the CI recipe: the wheel holds every package of the source tree (a package left
out of pyproject's list installs fine in editable mode and breaks everyone else), the names a user
types are the ones on the package index, and the GitHub Actions example is a valid workflow that
installs edgekit (not the user's own repository) and survives a run that wrote no report."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "edgekit.yml"
SOURCES = {"edgekit": ROOT / "edgekit", "edgekit/converters": ROOT / "converters",
           "edgekit/quantization": ROOT / "quantization", "edgekit/targets": ROOT / "targets"}


def test_wheel_holds_every_package_and_the_typing_marker(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    (wheel,) = tmp_path.glob("edgekit_ml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for prefix, folder in SOURCES.items():
        for init in folder.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.relative_to(folder).as_posix()
            assert f"{prefix}/{rel}" in names, f"{prefix}/{rel} is missing from the wheel (pyproject packages list)"
    assert "edgekit/py.typed" in names and "edgekit/schemas/report.schema.json" in names
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Name: edgekit-ml" in text and "Project-URL" in text and "Typing :: Typed" in text


def test_install_hints_name_the_distribution_on_the_index():
    from edgekit.errors import install_line

    assert install_line("tf") == "pip install 'edgekit-ml[tf]'"
    assert install_line("torch").endswith("--extra-index-url https://download.pytorch.org/whl/cpu")
    readme = (ROOT / "README.md").read_text()
    assert "pip install 'edgekit[" not in readme and 'pip install "edgekit[' not in readme


def test_workflow_is_valid_for_github_actions():
    """Linted against GitHub's workflow schema (check-jsonschema's vendored copy: offline)."""
    p = subprocess.run([str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema",
                        "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_workflow_installs_edgekit_with_cpu_torch_and_a_pip_cache():
    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = wf["jobs"]["models"]["steps"]
    install = [s["run"] for s in steps if "run" in s and s["run"].startswith("pip install")]
    assert install == ['pip install "$EDGEKIT_PACKAGE"'] and "edgekit-ml[" in wf["env"]["EDGEKIT_PACKAGE"]
    assert wf["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert any(s.get("uses", "").startswith("actions/cache@") and s["with"]["path"] == "~/.cache/pip" for s in steps)


def test_workflow_summary_step_survives_a_run_without_a_report(tmp_path):
    """`if: always()` runs the summary after a failed install or run too: it must not fail then."""
    wf = yaml.safe_load(WORKFLOW.read_text())
    (summary,) = [s for s in wf["jobs"]["models"]["steps"] if s.get("name") == "Job summary"]
    out = tmp_path / "summary.md"
    p = subprocess.run(["bash", "-c", summary["run"]], cwd=tmp_path, env={"GITHUB_STEP_SUMMARY": str(out), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert p.returncode == 0 and "no report" in out.read_text()
