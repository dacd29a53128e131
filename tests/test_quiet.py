"""Nothing but edgekit's own lines reaches stderr without --debug: TensorFlow's start-up lines
(absl's "All log messages before absl::InitializeLog()", the oneDNN notice), which no environment
variable silences, are captured while the framework is first imported; long work shows its
stages with elapsed time (plain timestamped lines when stderr is not a terminal); -q means errors
only."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import edgekit_cmd

NOISE = ("absl::InitializeLog", "oneDNN custom operations", "port.cc", "cpu_feature_guard")


def test_keras_commands_print_only_edgekit_lines(keras_digits, digits_files, tmp_path):
    env = dict(os.environ, EDGEKIT_ISOLATE="1")
    tflite = tmp_path / "d.tflite"
    for args in (["convert", keras_digits["keras"], "-o", tflite, "--data", digits_files / "test.npz", "--samples", "16"],
                 ["validate", keras_digits["keras"], tflite, "--data", digits_files / "test.npz", "--samples", "16"]):
        p = subprocess.run([*edgekit_cmd(), *map(str, args)], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert not [line for line in p.stderr.splitlines() if any(n in line for n in NOISE)], p.stderr
        assert "parity" in p.stderr  # edgekit's own report is still there
        # stage progress in a CI log: plain timestamped lines with elapsed time, no source locations
        stages = re.findall(r"^\[\s*(\d+\.\d)s\] +(\S.*)$", p.stderr, re.M)
        assert any(m.startswith(("Converting to tflite", "Comparing on")) for _, m in stages), p.stderr
        assert any(m.strip().endswith("16/16") for _, m in stages)  # counts of the parity stage
        assert [float(t) for t, _ in stages] == sorted(float(t) for t, _ in stages)
        assert ".py:" not in p.stderr
        q = subprocess.run([*edgekit_cmd(), "-q", *map(str, args)], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
        assert q.returncode == 0 and q.stderr.strip() == "", q.stderr


def test_a_failed_framework_import_keeps_its_diagnostics(tmp_path):
    """The capture is only for start-up chatter: an import that fails still shows what it printed."""
    import sys

    code = ("import os, sys; from edgekit.native_log import quiet_framework_logs; quiet_framework_logs(); "
            "sys.path.insert(0, sys.argv[1]); import keras")
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text("import os\nos.write(2, b'native: cannot load libfoo.so\\n')\n"
                                                    "raise ImportError('libfoo.so missing')\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 1 and "native: cannot load libfoo.so" in p.stderr and "libfoo.so missing" in p.stderr


def test_debug_after_the_subcommand_shows_framework_logs_as_before_it(keras_digits, digits_files, tmp_path):
    """`edgekit validate ... --debug` is `edgekit --debug validate ...`: the root quietened
    TensorFlow (log-level variables, import capture) before it saw the flag, which undoes that."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}
    tflite = tmp_path / "d.tflite"
    args = ["convert", keras_digits["keras"], "-o", tflite, "--samples", "4", "--data", digits_files / "test.npz"]
    assert subprocess.run([*edgekit_cmd(), "-q", *map(str, args)], env=env, cwd=tmp_path).returncode == 0
    check = ["validate", keras_digits["keras"], tflite, "--data", digits_files / "test.npz", "--samples", "4"]
    noise = {}
    for where, argv in (("before", ["--debug", *check]), ("after", [*check, "--debug"]), ("none", check)):
        p = subprocess.run([*edgekit_cmd(), *map(str, argv)], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        noise[where] = [n for n in NOISE if n in p.stderr]
    assert noise["before"] and noise["after"] == noise["before"] and not noise["none"], noise
