"""`edgekit run` end to end on the bundled example: builds, parity, host profiles, budgets,
reports (validated against the shipped JSON Schema and rendered in a real headless Chromium)."""

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import edgekit_cmd

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits"


def schema_validator():
    import jsonschema

    import edgekit

    return jsonschema.Draft202012Validator(json.loads(edgekit.SCHEMA_PATH.read_text()))


@pytest.fixture
def project(tmp_path):
    """A copy of the bundled example (models/, data/, edgekit.yaml as documented)."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("edgekit-out", "__pycache__"))
    return dest


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    dest = tmp_path_factory.mktemp("run") / "proj"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("edgekit-out", "__pycache__"))
    from tests.conftest import run_cli

    r = run_cli("run", dest / "edgekit.yaml", "--json")
    return dest, r


def test_documented_pipeline_runs_as_written(first_run):
    dest, r = first_run
    assert r.exit_code == 0, r
    report = r.json()
    out = dest / "edgekit-out"
    assert report["passed"] and [b["name"] for b in report["builds"]] == ["fp32", "int8"]
    for b in report["builds"]:
        assert b["status"] == "built"
        art = Path(b["artifact"])
        assert art.parent == out / b["name"] and art.is_file() and art.with_name(art.name + ".json").is_file()
        assert {v["budget"] for v in b["budgets"]} == {"size_mb", "latency_p90_ms", "min_psnr_db", "min_top1_agreement",
                                                     "max_accuracy_drop", "min_delegated_fraction"}
        (prof,) = b["profiles"]
        lat = prof["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    int8 = report["builds"][1]["convert"]
    assert int8["inputs"][0]["dtype"] == "int8" and int8["parity"]["accuracy"]["delta"] > -0.01
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["builds"][0]["convert"]["sha256"] == report["builds"][0]["convert"]["sha256"]
    md = (out / "report.md").read_text()
    assert "| fp32 | tflite | none |" in md and "✅" in md and len(md.splitlines()) < 60


def test_every_report_object_matches_the_schema(first_run, keras_digits, digits_files, tmp_path, cli):
    dest, r = first_run
    v = schema_validator()
    report = json.loads((dest / "edgekit-out" / "report.json").read_text())
    v.validate(report)
    for b in report["builds"]:
        v.validate(b["convert"])
        for prof in b["profiles"]:
            v.validate(prof)
    c = cli("convert", keras_digits["keras"], "-o", tmp_path / "m.tflite", "--json", "--data", digits_files / "test.npz")
    v.validate(c.json())
    val = cli("validate", keras_digits["keras"], tmp_path / "m.tflite", "--data", digits_files / "test.npz", "--json")
    v.validate(val.json())
    prof = cli("profile", tmp_path / "m.tflite", "--runs", "5", "--json")
    assert prof.exit_code == 0, prof
    v.validate(prof.json())
    # and the schema is not a rubber stamp
    broken = dict(report, builds=[dict(report["builds"][0], status="maybe")])
    assert not v.is_valid(broken)


def test_second_run_reuses_and_force_rebuilds(first_run, cli):
    dest, _ = first_run
    r = cli("run", dest / "edgekit.yaml", "--json")
    assert r.exit_code == 0, r
    rep = r.json()
    assert [b["status"] for b in rep["builds"]] == ["cached", "cached"]
    assert all(p.get("cached") for b in rep["builds"] for p in b["profiles"])
    r = cli("run", dest / "edgekit.yaml", "--only", "fp32", "--force", "--json")
    assert r.exit_code == 0, r
    rep = r.json()
    assert [b["name"] for b in rep["builds"]] == ["fp32"] and rep["builds"][0]["status"] == "built"


def test_rerender_saved_report(first_run, cli, tmp_path):
    dest, _ = first_run
    out = dest / "edgekit-out"
    r = cli("report", out / "report.json", "--format", "md")
    assert r.exit_code == 0 and r.stdout == (out / "report.md").read_text()
    r = cli("report", out / "report.json", "--format", "html", "-o", tmp_path / "r.html")
    assert r.exit_code == 0 and (tmp_path / "r.html").read_text() == (out / "report.html").read_text()
    (tmp_path / "bad.json").write_text("{\"kind\": \"convert\"}")
    r = cli("report", tmp_path / "bad.json")
    assert r.exit_code == 2 and "not an edgekit run report" in r.stderr


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("Debian's chromium is not installed (scripts/system-deps.sh installs it)")
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *extra, url],
        capture_output=True, text=True, timeout=120,
    )


def test_html_report_renders_in_chromium(first_run, tmp_path):
    from PIL import Image

    dest, _ = first_run
    page = dest / "edgekit-out" / "report.html"
    shot = tmp_path / "report.png"
    p = _chromium(page.as_uri(), tmp_path, "--window-size=1200,1400", f"--screenshot={shot}")
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    assert console == [], console  # no errors, no failed loads (the page must not touch the network)
    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 20)
    count = {c: n for n, c in colors}
    assert count.get((0x4C, 0x78, 0xA8), 0) > 500  # the size bars were drawn
    assert count.get((0xF5, 0x85, 0x18), 0) > 20  # the latency boxes were drawn
    dom = _chromium(page.as_uri(), tmp_path, "--dump-dom").stdout
    assert dom.count("<svg") >= 2 and "All budgets hold" in dom


def test_budget_failure_says_which_and_by_how_much(project, cli):
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["budgets"]["size_mb"] = 0.05
    cfg["builds"] = cfg["builds"][:1]
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml", "--json")
    assert r.exit_code == 1, r
    (b,) = r.json()["builds"]
    (size,) = [v for v in b["budgets"] if v["budget"] == "size_mb"]
    assert not size["passed"] and size["value"] > 0.05 and size["margin"] < 0
    assert "size_mb" in r.stderr and "1 budget(s) failed" in r.stderr
    assert "over by" in (project / "edgekit-out" / "report.md").read_text()


def test_a_failing_build_does_not_stop_the_others(project, cli):
    import numpy as np

    np.save(project / "data" / "wrong.npy", np.zeros((4, 7, 7, 1), np.float32))
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"] = [{"name": "bad", "to": "tflite", "quantize": "int8", "calibration": "data/wrong.npy"},
                     {"name": "fp32", "to": "tflite"}]
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml", "--json")
    assert r.exit_code == 1, r
    bad, good = r.json()["builds"]
    assert bad["status"] == "failed" and "(7, 7, 1)" in bad["error"]["message"]
    assert good["status"] == "built" and good["passed"]



def test_an_unreachable_target_is_named_in_the_failure(project, cli):
    # the run failed with "0 budget(s) failed." and nothing saying that the device never answered
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with ends: connection refused at once
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"], cfg["targets"] = cfg["builds"][:1], [f"ssh://nobody@127.0.0.1:{port}"]
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml")
    assert r.exit_code == 1 and "Traceback" not in r.stderr, r
    msg = " ".join(r.stderr.split())
    assert f"measurement(s) failed: fp32 on ssh://nobody@127.0.0.1:{port} (" in msg and "cannot reach" in msg, msg

def test_build_that_cannot_apply_fails_before_anything_runs(project, cli):
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"].append({"name": "ptl", "to": "torchscript"})
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml")
    assert r.exit_code == 2 and "cannot be built for torchscript" in r.stderr, r
    assert not (project / "edgekit-out").exists()  # a refused run leaves no folder behind


def test_missing_data_paths_are_refused_before_anything_runs(project, cli):
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"].append({"name": "int8-other", "to": "tflite", "quantize": "int8", "calibration": "data/gone.npz"})
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml")
    assert r.exit_code == 2, r
    assert "build 'int8-other': calibration" in r.stderr and "gone.npz does not exist" in r.stderr
    assert not (project / "edgekit-out").exists()
    cfg["builds"].pop()
    cfg["data"] = "data/tset.npz"
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", project / "edgekit.yaml")
    assert r.exit_code == 2 and "data: " in r.stderr and "tset.npz does not exist" in r.stderr, r


def test_unwritable_out(project, cli, readonly_dir):
    r = cli("run", project / "edgekit.yaml", "--out", readonly_dir / "out")
    assert r.exit_code == 2 and "Cannot write reports" in r.stderr, r


def test_corrupted_cache_entry_is_rebuilt_with_a_note(project, cli):
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"] = cfg["builds"][:1]
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    assert cli("run", project / "edgekit.yaml").exit_code == 0
    art = project / "edgekit-out" / "fp32" / "digits.tflite"
    art.write_bytes(art.read_bytes()[:1000])
    r = cli("run", project / "edgekit.yaml", "--json")
    assert r.exit_code == 0, r
    (b,) = r.json()["builds"]
    assert b["status"] == "built" and any("corrupted" in n for n in b["notes"])


def test_ctrl_c_leaves_a_partial_report(project):
    cfg = yaml.safe_load((project / "edgekit.yaml").read_text())
    cfg["builds"] = [{"name": "fp32", "to": "tflite"}, {"name": "fp16", "to": "tflite", "quantize": "fp16"},
                     {"name": "int8", "to": "tflite", "quantize": "int8"}]
    (project / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([*edgekit_cmd(), "run", str(project / "edgekit.yaml")], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    for line in proc.stderr:
        if "fp32: built" in line or time.time() > deadline:  # the first build is done (stage lines say "fp32: building")
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    report = json.loads((project / "edgekit-out" / "report.json").read_text())
    assert report["interrupted"] is True and report["passed"] is False
    assert [b["name"] for b in report["builds"]][:1] == ["fp32"] and "int8" in report["not_run"]
    assert "interrupted" in (project / "edgekit-out" / "report.md").read_text()
    assert "partial report" in rest and "nothing partial" not in rest
    assert not [d for d in (project / "edgekit-out").iterdir() if d.is_dir() and not any(d.iterdir())]


def test_ci_example_commands_run_locally(tmp_path):
    """The GitHub Actions example's own `run:` steps, executed here (install step excepted: the
    test's environment already has edgekit installed)."""
    import os
    import sys

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "edgekit.yml").read_text())
    steps = [s["run"] for s in workflow["jobs"]["models"]["steps"] if "run" in s]
    assert any(s.startswith("pip install") for s in steps)
    work = tmp_path / "repo"
    shutil.copytree(EXAMPLE, work / "examples" / "digits", ignore=shutil.ignore_patterns("edgekit-out"))
    summary = tmp_path / "summary.md"
    # the workflow's env, as GitHub resolves it for a team whose pipeline file is the example's
    assert workflow["env"]["PIPELINE"] == "${{ vars.EDGEKIT_PIPELINE || 'edgekit.yaml' }}"
    env = dict(os.environ, GITHUB_STEP_SUMMARY=str(summary), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PIPELINE="examples/digits/edgekit.yaml")
    for cmd in steps:
        if cmd.startswith("pip install"):
            continue
        p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, (cmd, p.stderr[-3000:])
    assert "| int8 | tflite | int8 |" in summary.read_text()
    assert (work / "edgekit-out" / "report.html").is_file()
