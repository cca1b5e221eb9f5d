#!/usr/bin/env bash
# Creates .venv in the repo root and installs pixlabel into it. Safe to re-run.
# System packages (Debian): the Fashion-MNIST dataset for the demo; PostgreSQL for the store tests.
set -euo pipefail
cd "$(dirname "$0")/.."
want_apt=("$@")
if [ ${#want_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${want_apt[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "warning: could not apt-get install ${missing[*]}; continuing without" >&2
  fi
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision are pinned in pyproject.toml to builds that install offline on our machines
.venv/bin/python -m pip install -q -e ".[dev]"
