"""Every public function, class and method of edgekit/, converters/, quantization/ and targets/
says what it does (issue 10): a new one without a docstring fails here, naming it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _public(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                        yield f"{node.name}.{item.name}", item


def _modules():
    for folder in ("edgekit", "converters", "quantization", "targets"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_every_public_name_has_a_docstring():
    missing = [f"{path.relative_to(ROOT)}: {name}" for path in _modules()
               for name, node in _public(ast.parse(path.read_text())) if not ast.get_docstring(node)]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_no_module_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these modules along their seams:\n" + "\n".join(long)
