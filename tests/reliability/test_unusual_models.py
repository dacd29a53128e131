"""Models shaped like those in converter bug reports (litert-torch, ExecuTorch, TFLite), which
edgekit's own designs did not cover: each a real small model written to a factory file in the
test, run through the CLI, held to the error contract (documented exit code, one `error:`
paragraph with its hint, no traceback, nothing left beside the output)."""

from __future__ import annotations

import json
import textwrap

import numpy as np

from tests.conftest import run_cli

TORCH_HEAD = "import torch, torch.nn as nn\n"


def factory(tmp_path, body: str, name: str = "nets.py") -> str:
    """Write BODY (after `import torch, torch.nn as nn`) to TMP_PATH/NAME; returns its path."""
    p = tmp_path / name
    p.write_text(TORCH_HEAD + textwrap.dedent(body))
    return str(p)


def one_error(r) -> str:
    """The single `error:` paragraph's first line; fails on a traceback or several errors."""
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r
    return errors[0]


def test_sequence_first_attention_is_refused_by_name(tmp_path):
    """nn.MultiheadAttention without batch_first takes (L, N, E): query 6x1x16 and key 5x1x16
    differ in their first axis, which edgekit stacks samples on. Before: an IndexError reported
    as an edgekit bug (exit 1); now exit 2 naming both inputs and batch_first=True."""
    nets = factory(tmp_path, """
        class MHA(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = nn.MultiheadAttention(16, 2)

            def forward(self, q, k):
                return self.attn(q, k, k)[0]

        def build():
            return MHA().eval(), (torch.randn(6, 1, 16), torch.randn(5, 1, 16))
    """)
    r = run_cli("convert", nets + ":build", "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    line = one_error(r)
    assert "q 6x1x16" in line and "k 5x1x16" in line and "first dimension" in line, r
    assert "batch_first=True" in r.stderr, r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"], r
