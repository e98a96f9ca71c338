#!/usr/bin/env bash
# ansible-test sanity (ansible-core's checks for collections: pylint, pep8, validate-modules,
# ansible-doc, import, compile, yamllint, shebang, ...) without containers or --venv, on this
# machine's Python (the repo virtualenv's version). Usage: scripts/sanity.sh [ansible-test args]
#
# - ansible-test must run from a directory named ansible_collections/<namespace>/<name>: the files
#   git knows (tracked and new, as they are in the working tree) are copied to
#   .build/sanity/ansible_collections/moneytracker/deploy. That copy gets its own git index,
#   because ansible-test lists content with git and would otherwise find the checkout's
#   repository, where .build/ is ignored, and test no file at all.
# - Each test runs in a virtualenv of its own that ansible-test creates and caches in
#   ~/.ansible/test/venv (the first run installs the pinned tools from the package index, later
#   runs reuse them). ansible-test bootstraps pip there with a script from
#   ci-files.testing.ansible.com, which is not reachable here: scripts/ansible_test_get_pip.py
#   stands in for it (see there), using the machine's pip configuration instead.
# - Ignored findings, each with its reason: tests/sanity/ignore-<ansible version>.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${SANITY_BUILD:-.build}
root=$build/sanity/ansible_collections/moneytracker/deploy

rm -rf "$build/sanity"
mkdir -p "$root"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do if [[ -f $f && ! -L $f ]]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - -cf - | tar -xf - -C "$root"
git -C "$root" init -q
git -C "$root" add -A

# The pip bootstrap stand-in, under the name ansible-test looks for. A real get-pip script that
# someone saved there is left alone.
python=$(command -v python)
pip_version=$("$python" -c 'import sys
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(type("Python", (), {"version": "%d.%d" % sys.version_info[:2]})())["pip"])')
cache=$HOME/.ansible/test/cache
get_pip=$cache/get_pip_${pip_version//./_}.py
mkdir -p "$cache"
if [[ ! -f $get_pip ]] || grep -q "Stand-in for ansible-test's pip bootstrap" "$get_pip"; then
  cp scripts/ansible_test_get_pip.py "$get_pip"
fi
"$python" -c 'import json, os, sys
json.dump({k: v for k, v in os.environ.items() if k.startswith("PIP_")}, open(sys.argv[1], "w"), indent=1)' \
  "$cache/pip-environment.json"

python_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cd "$root"
start=$(date +%s)
status=0
ansible-test sanity --python "$python_version" --color no "$@" || status=$?
echo "ansible-test sanity took $(( $(date +%s) - start )) s"
exit "$status"
