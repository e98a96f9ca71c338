#!/usr/bin/env bash
# Unit tests of the monitoring role's Prometheus alert rules: renders the rules from the role's
# template (roles/monitoring/templates/alert-rules.yml.j2) with the role's defaults, checks them
# with `promtool check rules` (with and without the database group), then runs every
# tests/prometheus/*.test.yml with `promtool test rules` (fire and not-fire cases).
#
#   tests/prometheus/run.sh          uses promtool from PATH (Debian: apt-get install prometheus)
#   PROMTOOL=/path/to/promtool tests/prometheus/run.sh
#   PROMTOOL_IMAGE=moneytracker-test/prometheus:debian13 tests/prometheus/run.sh   promtool of that image
#
# Needs ansible (the project's virtualenv) and the collection installed (make collection), for
# the filters the role's variables use.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[[ -x "$ROOT/.venv/bin/ansible" ]] && export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.build/collections}"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false

log() { printf '[prometheus-rules] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/prometheus-rules.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -n "${PROMTOOL_IMAGE:-}" ]]; then
  promtool=(docker run --rm --network none --user "$(id -u):$(id -g)" -v "$work:$work" -w "$work"
            --entrypoint promtool "$PROMTOOL_IMAGE")
else
  bin="${PROMTOOL:-$(command -v promtool || true)}"
  [[ -n "$bin" ]] || die "promtool not found: apt-get install prometheus (Debian), or set PROMTOOL or PROMTOOL_IMAGE"
  promtool=("$bin")
fi
log "$("${promtool[@]}" --version 2>&1 | head -1)"

render() {  # DEST EXTRA-VARS...: the rules as the role writes them, from its defaults
  local dest="$1"; shift
  ansible localhost -i localhost, -c local \
    -e "ansible_python_interpreter=$(command -v python3)" \
    -e "@$ROOT/roles/monitoring/defaults/main.yml" -e "@$ROOT/roles/monitoring/vars/main.yml" "$@" \
    -m ansible.builtin.template \
    -a "src=$ROOT/roles/monitoring/templates/alert-rules.yml.j2 dest=$dest mode=0644" >"$work/render.log" 2>&1 \
    || { cat "$work/render.log" >&2; die "could not render the rules"; }
}

render "$work/alert-rules.yml"
render "$work/alert-rules-no-textfile.yml" -e monitoring_prometheus_textfile_dir=
"${promtool[@]}" check rules "$work/alert-rules.yml" "$work/alert-rules-no-textfile.yml"
if grep -q 'moneytracker-db' "$work/alert-rules-no-textfile.yml"; then
  die "the database alerts are there although monitoring_prometheus_textfile_dir is empty"
fi

cp "$HERE"/*.test.yml "$work/"
tests=("$work"/*.test.yml)
log "promtool test rules: ${#tests[@]} files"
(cd "$work" && "${promtool[@]}" test rules "${tests[@]##*/}")
log "all rule tests passed"
