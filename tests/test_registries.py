"""One registry per concept: the README, the --help texts and the pipeline-file checks agree
with the registries (recipes, --to formats, parity presets, targets, budgets, command routes),
and a converter or target added to its registry alone shows up everywhere and works."""

import re
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit import converters, quantization, targets
from edgekit.cli import ROUTES, cli, load_command, short_help
from edgekit.pipeline_file import BUDGETS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def help_of(*args) -> str:
    """`edgekit ARGS --help` in this process, unwrapped (one very wide line per option)."""
    r = CliRunner().invoke(cli, [*args, "--help"], terminal_width=10_000, max_content_width=10_000)
    assert r.exit_code == 0, r.output
    return r.output


def choices_in_help(text: str, option: str) -> list[str]:
    m = re.search(rf"{re.escape(option)} \[([^\]]+)\]", text)
    assert m, f"{option} shows no choices in:\n{text}"
    return m.group(1).split("|")


def readme_row(first_cell_start: str) -> list[str]:
    """The cells of the README table row whose first cell starts with FIRST_CELL_START."""
    for line in README.splitlines():
        if line.startswith("| " + first_cell_start):
            return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    raise AssertionError(f"README has no table row starting with {first_cell_start!r}")


def readme_table(header: str) -> list[list[str]]:
    """The body rows of the README table whose header line starts with HEADER."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# ---- the README and --help agree with the registries -------------------------------------


def test_recipes_readme_table_and_choices():
    from edgekit.parity import PRESETS

    rows = readme_table("| recipe | weights | activations | calibration | parity preset")
    assert [r[0].strip("`") for r in rows] == list(quantization.RECIPES)
    for name, weights, activations, calibration, preset in rows:
        recipe = quantization.RECIPES[name.strip("`")]
        assert weights == recipe.weights, name
        assert activations.split(" ")[0].rstrip(",") == recipe.activations, name
        assert (calibration == "yes") == recipe.needs_calibration, name
        t = PRESETS[recipe.precision]
        psnr, cos, top1, drop = (p.strip() for p in preset.split("/"))
        assert float(psnr.removesuffix(" dB")) == t["min_psnr_db"], name
        assert float(cos) == t["min_cosine"] and float(top1) == t["min_top1_agreement"], name
        assert float(drop.removesuffix(" pt")) == pytest.approx(100 * t["max_accuracy_drop"]), name
    assert readme_row("`--quantize ")[0].strip("`").split(" ", 1)[1].split("|") == list(quantization.RECIPES)
    assert readme_row("`--io-dtype ")[0].strip("`").split(" ", 1)[1].split("|") == list(quantization.io_dtypes())
    text = help_of("convert")
    assert choices_in_help(text, "--quantize") == list(quantization.RECIPES)
    assert choices_in_help(text, "--io-dtype") == list(quantization.io_dtypes())


def test_to_formats_readme_and_choices():
    formats = list(converters.formats())
    assert set(formats) == {c.to for c in converters.CONVERTERS}
    assert readme_row("`--to ")[0].strip("`").split(" ", 1)[1].split("|") == formats
    assert choices_in_help(help_of("convert"), "--to") == formats
    for c in converters.CONVERTERS:  # each registered module declares what it does
        m = c.load()
        assert m.FRAMEWORKS and m.SUFFIX.startswith(".") and set(m.RECIPES) <= set(quantization.RECIPES), c


def test_presets_readme_and_choices():
    from edgekit.parity import PRESETS

    assert list(quantization.precisions()) == list(PRESETS)
    assert readme_row("`--preset ")[0].strip("`").split(" ", 1)[1].split("|") == list(PRESETS)
    assert choices_in_help(help_of("validate"), "--preset") == list(PRESETS)


def test_targets_readme_table_and_help():
    rows = readme_table("| TARGET | what it is |")
    assert [(r[0].strip("`"), r[1]) for r in rows] == [(t.form, t.what) for t in targets.TARGETS]
    for args in (("profile",), ("validate",), ("devices", "check")):
        text = help_of(*args)
        for t in targets.TARGETS:
            assert t.form in text, (args, t.form)
    with pytest.raises(Exception) as e:
        targets.get("nowhere:1")
    assert all(t.form in e.value.hint for t in targets.TARGETS)


def test_budgets_readme_and_help():
    sentence = README.split("Budgets: ", 1)[1].split(". ", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", sentence)) == set(BUDGETS)
    text = help_of("run")
    assert all(b in text for b in BUDGETS)


def test_routes_match_the_commands():
    for name, (module, short) in ROUTES.items():
        cmd = load_command(name)
        assert cmd.name == name and module == name
        assert cmd.get_short_help_str(10_000) == short_help(name, 10_000), name
        assert cmd.get_short_help_str(45) == short_help(name, 45), name
    text = help_of()
    assert all(name in text for name in ROUTES)


# ---- adding through the registry alone ------------------------------------------------------


@pytest.fixture
def toy_converter(monkeypatch):
    """A converter for format "toyfmt" from keras models, registered by one registry line."""
    from edgekit.artifacts import Artifact

    mod = types.ModuleType("tests.toy_converter")
    mod.FRAMEWORKS, mod.RECIPES, mod.SUFFIX = ("keras",), ("none",), ".toy"

    def convert(source, recipe, dest, options):
        Path(dest).write_bytes(b"toy")
        return Artifact(path=Path(dest), format="toyfmt", inputs=source.inputs, outputs=[], recipe=recipe.name)

    mod.convert = convert
    monkeypatch.setitem(sys.modules, "tests.toy_converter", mod)
    monkeypatch.setattr(converters, "CONVERTERS", [*converters.CONVERTERS, converters.Converter("toyfmt", "tests.toy_converter")])
    return mod


@pytest.fixture
def toy_target(monkeypatch):
    """A target "toy[:N]" registered by one registry line; check() answers without any agent."""
    mod = types.ModuleType("tests.toy_target")

    class ToyTarget:
        def __init__(self, spec):
            self.spec = spec

        def check(self):
            return {"schema_version": 1, "kind": "device-check", "target": self.spec, "reachable": True,
                    "device": {"machine": "toy", "cpu": "toy", "cores": 1, "os": "toy", "python": "3"},
                    "python": "python3", "numpy": "2", "formats": {}}

    mod.from_spec = lambda spec, **options: ToyTarget(spec)
    monkeypatch.setitem(sys.modules, "tests.toy_target", mod)
    kind = targets.TargetKind("toy", "tests.toy_target", "toy[:N]", "a toy target for the tests")
    monkeypatch.setattr(targets, "TARGETS", [*targets.TARGETS, kind])
    return mod


def test_added_converter_shows_up_and_converts(toy_converter, monkeypatch, tmp_path, cli):
    from edgekit import sources
    from edgekit.specs import TensorSpec

    assert "toyfmt" in choices_in_help(help_of("convert"), "--to")
    assert converters.suffix_for("toyfmt") == ".toy"
    assert converters.converter_for("toyfmt", "keras") is toy_converter
    model = tmp_path / "m.keras"
    model.write_bytes(b"not really keras")
    fake = sources.SourceModel(framework="keras", origin=str(model), inputs=[TensorSpec("x", (1, 2), "float32")],
                               native=None, reference=lambda feeds: {}, size_bytes=16)
    monkeypatch.setattr(sources, "load_model", lambda spec, shapes=None, weights=None: fake)
    r = cli("convert", model, "--to", "toyfmt", "--no-validate", "--json", cwd=tmp_path)
    assert r.exit_code == 0, r
    assert r.json()["format"] == "toyfmt" and (tmp_path / "m.toy").read_bytes() == b"toy"
    r = cli("convert", model, "--to", "toyfmt", "--quantize", "int8", "--calibration", "random", cwd=tmp_path)
    assert r.exit_code == 2 and "This path supports: none" in r.stderr


def test_added_converter_and_target_in_the_pipeline_file(toy_converter, toy_target, tmp_path):
    from edgekit.errors import BadInput
    from edgekit.pipeline import check_builds
    from edgekit.pipeline_file import load

    (tmp_path / "m.keras").write_bytes(b"x")
    f = tmp_path / "edgekit.yaml"
    f.write_text("model: m.keras\nbuilds:\n  - {name: t, to: toyfmt}\ntargets: [host, 'toy:1']\n")
    p = load(f)
    assert p.builds[0].to == "toyfmt" and p.targets == ["host", "toy:1"]
    assert check_builds(p) == "keras"
    f.write_text("model: m.keras\nbuilds:\n  - {name: t, to: toyfmt, quantize: int8}\ncalibration: random\n")
    with pytest.raises(BadInput, match="not available for keras → toyfmt"):
        check_builds(load(f))
    f.write_text("model: m.keras\nbuilds:\n  - {name: t, to: nofmt}\n")
    with pytest.raises(BadInput) as e:
        load(f)
    assert ":3: builds.0.to" in e.value.message and "toyfmt" in e.value.hint
    f.write_text("model: m.keras\nbuilds:\n  - {name: t}\ntargets: [host, 'nowhere:1']\n")
    with pytest.raises(BadInput) as e:
        load(f)
    assert ":4: targets.1" in e.value.message and "toy[:N]" in e.value.hint


def test_added_target_shows_up_and_works(toy_target, cli):
    assert "toy[:N]" in help_of("profile") and "toy[:N]" in help_of("devices", "check")
    r = cli("devices", "check", "toy:1", "--json")
    assert r.exit_code == 0, r
    assert r.json()["target"] == "toy:1"
