#!/usr/bin/env bash
# What `make demo` and `make test` need on this machine, set up when missing (run as root on a
# fresh Debian): docker.io (dockerd), debootstrap (local base images), sqlite3 and zstd (the host
# tool's tests), python3-venv (the virtualenv); then a Docker engine that answers (dockerd is
# started in the background when none does; its log: /var/log/dockerd-moneytracker.log).
# Says what it does; does nothing when everything is there. .ci/run calls it too.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
log() { printf '[host-setup] %s\n' "$*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v zstd >/dev/null || need+=(zstd)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing: ${need[*]}; install them as root (apt-get install ${need[*]}) or run make as root" >&2
    exit 1
  fi
  log "installing the Debian packages: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    log "no Docker engine answers; start dockerd (as root) or add this user to the docker group" >&2
    exit 1
  fi
  log "no Docker engine answers: starting dockerd in the background (log: /var/log/dockerd-moneytracker.log)"
  nohup dockerd >/var/log/dockerd-moneytracker.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  if ! docker info >/dev/null 2>&1; then
    tail -30 /var/log/dockerd-moneytracker.log >&2
    log "dockerd did not start (see its log above)" >&2
    exit 1
  fi
  log "docker $(docker version --format '{{.Server.Version}}') is up"
fi
