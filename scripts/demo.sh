#!/usr/bin/env bash
# One command: install, then label Fashion-MNIST from 10 labels per class and print how accurate it was.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dataset-fashion-mnist
exec .venv/bin/pixlabel demo "$@"
