"""The Python API mirrors the CLI: the same functions, returning the same result dicts."""

import json

import edgekit


def test_api_names_are_the_functions_even_after_their_modules_load(keras_digits, digits_files, tmp_path, cli):
    import edgekit.build  # noqa: F401  (importing a submodule must not shadow an API name)
    import edgekit.validation  # noqa: F401

    art = tmp_path / "m.tflite"
    res = edgekit.convert(str(keras_digits["keras"]), data=str(digits_files / "test.npz"), output=art)
    assert callable(edgekit.convert) and callable(edgekit.validate) and callable(edgekit.run)
    via_cli = cli("convert", keras_digits["keras"], "--data", digits_files / "test.npz", "-o", tmp_path / "c.tflite", "--json").json()
    assert set(res) == set(via_cli) and res["parity"]["passed"] and res["sha256"] == via_cli["sha256"]
    check = edgekit.validate(keras_digits["model"], str(art), data=str(digits_files / "test.npz"))
    assert check["kind"] == "validate" and check["passed"]
    assert check["reference"]["kind"] == "model"
    json.dumps(check)  # plain data, ready for --json
