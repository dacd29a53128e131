"""A framework that is not installed is exit 3 with the extra's install line (issue 12).

A TF-only install is simulated by removing PyTorch from a real edgekit process: a sitecustomize
on PYTHONPATH (so edgekit's own child processes get it too) puts a meta-path finder first that
answers every `torch*`/`executorch` import as Python does for a package that is not installed.
Nothing of torch is faked; it is only made unimportable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import edgekit_cmd

BLOCKER = '''
import sys

class _NotInstalled:
    """Answer imports of these packages as if they were not installed."""
    blocked = ("torch", "torchao", "torchvision", "torchaudio", "executorch", "litert_torch")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
'''


@pytest.fixture
def tf_only_env(tmp_path):
    site = tmp_path / "no-torch"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "No module named 'torch'" in check.stderr  # torch really is gone
    return env


@pytest.mark.parametrize("where", ["top", "inside"])
def test_torch_factory_without_torch_is_exit_3(tmp_path, tf_only_env, where):
    """`import torch` at the top of the factory file, or inside the factory function."""
    body = {"top": "import torch\n\ndef build():\n    return torch.nn.Linear(4, 2)\n",
            "inside": "def build():\n    import torch\n    return torch.nn.Linear(4, 2)\n"}[where]
    (tmp_path / "net.py").write_text(textwrap.dedent(body))
    p = subprocess.run([*edgekit_cmd(), "convert", f"{tmp_path / 'net.py'}:build", "--input-shape", "1,4",
                        "-o", str(tmp_path / "net.tflite")], env=tf_only_env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 3, p.stderr
    assert "pip install 'edgekit-ml[torch]'" in p.stderr and "PyTorch" in p.stderr, p.stderr
    assert "Fix the error in that file" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "net.tflite").exists()


def test_factory_with_its_own_import_error_is_still_bad_input(tmp_path, tf_only_env):
    """A module that is not a framework edgekit installs stays the user's error (exit 2)."""
    (tmp_path / "net.py").write_text("import not_a_real_module_xyz\n\ndef build():\n    return None\n")
    p = subprocess.run([*edgekit_cmd(), "convert", f"{tmp_path / 'net.py'}:build", "-o", str(tmp_path / "o.tflite")],
                       env=tf_only_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "not_a_real_module_xyz" in p.stderr and "Traceback" not in p.stderr
