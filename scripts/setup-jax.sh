#!/usr/bin/env bash
# Create (idempotently) the Python virtual environment used to regenerate
# hlo-samples/ and to run JAX reference benchmarks.
#
#   JAX_VENV=/path/to/venv scripts/setup-jax.sh     (default: /opt/jaxvenv)
#   PYTHON=python3.11 scripts/setup-jax.sh          (interpreter used to create it)
#
# CPU-only JAX, pinned to the version the committed samples were produced with.
set -euo pipefail

JAX_VENV="${JAX_VENV:-/opt/jaxvenv}"
JAX_VERSION="0.8.3"
PYTHON="${PYTHON:-python3}"

check() {
  "$JAX_VENV/bin/python" - "$JAX_VERSION" <<'EOF' >/dev/null 2>&1
import sys
import jax, jaxlib, numpy  # noqa: F401
want = sys.argv[1]
sys.exit(0 if jax.__version__ == want and jaxlib.__version__ == want else 1)
EOF
}

if [ -x "$JAX_VENV/bin/python" ] && check; then
  echo "setup-jax: $JAX_VENV already has jax/jaxlib $JAX_VERSION"
  exit 0
fi

if [ ! -x "$JAX_VENV/bin/python" ]; then
  echo "setup-jax: creating venv at $JAX_VENV"
  "$PYTHON" -m venv "$JAX_VENV"
fi

echo "setup-jax: installing jax[cpu]==$JAX_VERSION into $JAX_VENV"
"$JAX_VENV/bin/python" -m pip install --disable-pip-version-check \
  "jax[cpu]==$JAX_VERSION" "jaxlib==$JAX_VERSION" numpy

if ! check; then
  echo "setup-jax: installed environment does not report jax/jaxlib $JAX_VERSION" >&2
  exit 1
fi
"$JAX_VENV/bin/python" -c 'import jax, jaxlib, numpy; print("setup-jax: ok: jax", jax.__version__, "jaxlib", jaxlib.__version__, "numpy", numpy.__version__, "devices", jax.devices())'
