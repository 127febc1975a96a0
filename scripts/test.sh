#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, integration and
# end-to-end tests (including the differential test against real ClickHouse).
# CI (.ci/run) runs exactly this. Needs the Rust toolchain, cargo-nextest and
# Python 3.11; installs the Python test packages into .venv itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "python test venv (.venv: chdb, duckdb, pyarrow, pyroaring)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo nextest run --workspace --locked --no-fail-fast
