#!/usr/bin/env bash
# What tests/test_scaleout.py needs from the system, which a fresh machine lacks: PostgreSQL
# (the team server's database) and SLURM with munge (a one-node cluster the test starts).
# Idempotent: apt runs only when a tool is missing. The Python side is in the `test` extra;
# Ray is not, and gets a virtualenv of its own (.ci/run, docs/scale-out.md).
set -euo pipefail

packages=()
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  packages+=(postgresql)
fi
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || { packages+=(munge slurmctld slurmd slurm-client); break; }
done
if [ "${#packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
