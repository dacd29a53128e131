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


def test_api_signatures_follow_the_dict_functions():
    """Each named argument of edgekit.<fn> is the underlying function's: same name, place, default.

    Callbacks (`progress`, `log`, `on_build`) default to None in the API, meaning "the
    underlying default"; any argument the API does not name still passes through **options.
    """
    import inspect

    from edgekit import build, pipeline, profiling, validation

    callbacks = {"progress", "log", "on_build"}
    for api_fn, dict_fn in [(edgekit.convert, build.convert), (edgekit.validate, validation.validate),
                            (edgekit.profile, profiling.profile), (edgekit.run, pipeline.run)]:
        ours = [p for p in inspect.signature(api_fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
        theirs = list(inspect.signature(dict_fn).parameters.values())
        assert [p.name for p in ours] == [p.name for p in theirs[: len(ours)]], api_fn.__name__
        for a, b in zip(ours, theirs):
            assert a.kind == b.kind, (api_fn.__name__, a.name)
            assert a.default is None if a.name in callbacks else a.default == b.default, (api_fn.__name__, a.name)
        assert api_fn.__doc__ and all(w in api_fn.__doc__ for w in ("Args:", "Returns:", "Raises:", "schema"))


def test_api_results_are_typed_and_still_dicts(tmp_path, keras_digits, digits_files):
    from edgekit.results import ConvertResult, ProfileResult

    art = tmp_path / "m.tflite"
    res = edgekit.convert(keras_digits["model"], data=str(digits_files / "test.npz"), output=art, samples=8)
    assert isinstance(res, ConvertResult) and isinstance(res, dict)
    assert res.parity.passed is res["parity"]["passed"] and res.size_bytes == res["size_bytes"] == art.stat().st_size
    assert json.loads(json.dumps(res)) == res.to_dict()
    prof = edgekit.profile(art, runs=2, warmup=0)
    assert isinstance(prof, ProfileResult) and prof.latency_ms.p50 == prof["latency_ms"]["p50"]
