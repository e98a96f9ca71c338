#!/usr/bin/env bash
# The sandbox host of inventories/sandbox: a local Debian 13 container with systemd and its
# own Docker engine, created with the very platform settings the Molecule test hosts use
# (.config/molecule/config.yml), so the demo and the tests run on the same kind of host.
#
#   scripts/sandbox.sh up      create (or start) it and prepare it like a test host
#   scripts/sandbox.sh info    print how to reach it and the app
#   scripts/sandbox.sh down    remove it and its Docker data volume
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="${SANDBOX_NAME:-moneytracker-sandbox}"
IMAGE="${MOLECULE_TESTHOST_IMAGE:-moneytracker-local/testhost:trixie}"
# The app's published port inside the sandbox, forwarded to the controller's loopback only.
APP_PORT="${SANDBOX_APP_PORT:-8080}"
HOST_PORT="${SANDBOX_HOST_PORT:-8080}"

log() { printf '[sandbox] %s\n' "$*" >&2; }

platform_args() {  # docker run flags from the shared Molecule platform definition
  python3 - "$ROOT/.config/molecule/config.yml" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))["platforms"][0]
args = []
for cap in p.get("capabilities", []):
    args += ["--cap-add", cap]
for opt in p.get("security_opts", []):
    args += ["--security-opt", opt]
for vol in p.get("volumes", []):
    if vol == "/var/lib/docker":
        continue  # a named volume of its own, below
    args += ["-v", vol]
for t in p.get("tmpfs", []):
    args += ["--tmpfs", t]
for k, v in (p.get("env") or {}).items():
    args += ["-e", f"{k}={v}"]
print("\n".join(args))
PY
}

up() {
  "$ROOT/scripts/build-images.sh" testhost
  if docker container inspect "$NAME" >/dev/null 2>&1; then
    docker start "$NAME" >/dev/null
    log "$NAME is running"
  else
    mapfile -t args < <(platform_args)
    docker run -d --name "$NAME" --hostname "$NAME" \
      --label org.moneytracker.role=sandbox \
      --stop-signal SIGRTMIN+3 \
      -v "${NAME}-docker:/var/lib/docker" \
      -p "127.0.0.1:${HOST_PORT}:${APP_PORT}" \
      "${args[@]}" "$IMAGE" /sbin/init >/dev/null
    log "created $NAME from $IMAGE"
  fi
  MOLECULE_NESTED_DOCKER_WORKAROUNDS="${MOLECULE_NESTED_DOCKER_WORKAROUNDS:-true}" \
    ansible-playbook -i "$ROOT/inventories/sandbox" "$ROOT/molecule/shared/prepare.yml" >/dev/null
  log "prepared $NAME"
}

info() {
  docker container inspect "$NAME" >/dev/null 2>&1 || { log "no sandbox: run make demo"; exit 1; }
  echo "Sandbox host: $NAME (docker exec -it $NAME bash)"
  echo "Docker on it: docker exec $NAME docker ps"
  if curl -fsS --max-time 5 "http://127.0.0.1:${HOST_PORT}/health/ready" >/dev/null 2>&1; then
    echo "MoneyTracker is up: http://127.0.0.1:${HOST_PORT}/  (add an account and a transaction there)"
  else
    echo "MoneyTracker does not answer yet at http://127.0.0.1:${HOST_PORT}/ (run: ansible-playbook -i inventories/sandbox deploy.yml)"
  fi
}

down() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "${NAME}-docker" >/dev/null 2>&1 || true
  log "removed $NAME"
}

case "${1:-}" in
  up) up ;;
  info) info ;;
  down) down ;;
  *) echo "usage: $0 up|info|down" >&2; exit 2 ;;
esac
