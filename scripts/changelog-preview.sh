#!/usr/bin/env bash
# Prints CHANGELOG.md as the next release would write it from changelogs/fragments/ (nothing in
# the checkout changes): `antsibull-changelog release` on a copy of the tracked files.
# Usage: scripts/changelog-preview.sh [VERSION]   (default: galaxy.yml's version)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${1:-$(awk '/^version:/ {print $2}' galaxy.yml)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/ansible_collections/moneytracker/deploy
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$dest" 2>/dev/null || true
cd "$dest"
ANSIBLE_COLLECTIONS_PATH=$tmp antsibull-changelog release --version "$version" --date "$(date -u +%F)" >&2
cat CHANGELOG.md
