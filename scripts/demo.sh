#!/usr/bin/env bash
# Set up .venv and run the main job on the bundled example: a CNN trained on handwritten digits,
# converted to a full-int8 TFLite model and checked against the original on held-out digits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p edgekit-out
.venv/bin/edgekit convert examples/digits/models/digits.keras --quantize int8 \
    --calibration examples/digits/data/calib.npz --data examples/digits/data/test.npz \
    -o edgekit-out/digits_int8.tflite
