#!/usr/bin/env bash
# Optional CI step: what tests/test_scaleout.py needs for its PostgreSQL test. Idempotent:
# apt runs only when initdb is missing (Debian's postgresql, ~25 s to install when absent),
# then a PostgreSQL driver for MLflow goes into the active virtualenv (~2 s).
# Ray is not installed here: hydra-ray-launcher pins cloudpickle<3, which would downgrade
# what joblib and MLflow use in the project's environment (docs/scale-out.md).
set -euo pipefail

if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql
fi
# SQLAlchemy 2.1 reads postgresql:// as psycopg (3); the test names its driver explicitly.
python -m pip install -q "psycopg[binary]>=3.1"
