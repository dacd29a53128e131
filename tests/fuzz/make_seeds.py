"""Regenerate the artifact seeds of the fuzz tests (tests/fuzz/seeds/): real files written by
edgekit (and torch.onnx.export for .onnx), from nets small enough that each seed is a few KB.

    python -m tests.fuzz.make_seeds
"""

from __future__ import annotations

from pathlib import Path

SEEDS = Path(__file__).parent / "seeds"

NETS = '''
def keras_net():
    import keras
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,), name="x"),
                             keras.layers.Dense(4, activation="relu", name="hidden"),
                             keras.layers.Dense(3, name="out")])


def torch_net():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).eval()
    return net, (torch.zeros(1, 6),)
'''


def main() -> None:
    import tempfile

    import torch

    from tests.conftest import run_cli

    SEEDS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        nets = Path(tmp) / "nets.py"
        nets.write_text(NETS)
        for name, src, to in (("net.tflite", "keras_net", "tflite"), ("net.pte", "torch_net", "executorch"),
                              ("net.ptl", "torch_net", "torchscript")):
            r = run_cli("convert", f"{nets}:{src}", "--to", to, "-o", Path(tmp) / name, "--samples", "4")
            assert r.exit_code == 0, r
            (SEEDS / name).write_bytes((Path(tmp) / name).read_bytes())
        net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).eval()
        torch.onnx.export(net, (torch.zeros(1, 6),), str(SEEDS / "net.onnx"), input_names=["x"],
                          output_names=["out"], dynamo=False)
    for p in sorted(SEEDS.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
