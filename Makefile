# moneytracker.deploy — the two commands a new user needs:
#   make demo   deploy to a local sandbox host and print the URL
#   make test   set everything up, then lint, sanity, unit, integration and Molecule tests
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BUILD := .build
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Tests and demo use the collection as installed from its built artifact; with DEV=1 (after
# `make dev`) they use the checkout itself through a symlink, so edits take effect at once.
ifeq ($(DEV),1)
export ANSIBLE_COLLECTIONS_PATH := $(abspath $(BUILD))/dev-collections
else
export ANSIBLE_COLLECTIONS_PATH := $(abspath $(BUILD))/collections
endif
export ANSIBLE_CONFIG := $(abspath ansible.cfg)
export PYTHONDONTWRITEBYTECODE := 1

COLLECTION_VERSION := $(shell awk '/^version:/ {print $$2}' galaxy.yml)
COLLECTION_TARBALL := $(BUILD)/dist/moneytracker-deploy-$(COLLECTION_VERSION).tar.gz
# Not in `make test`: swarm (three test hosts), run by `make test-swarm`, which CI runs after
# `make test`. With it `make test` took ~67 min on this 2-core machine (2026-12-02, ~1530 s for
# swarm, and every scenario beside it ~30 % slower), far over the 45-minute budget; alone it takes
# ~15-20 min, so CI's total (setup, `make test`, `make test-swarm`) stays within its 90 minutes.
_OUTSIDE_TEST := swarm
_SCENARIOS := $(filter-out $(_OUTSIDE_TEST),$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
# The longest scenarios first, so that the two parallel runs finish together (durations in
# docs/testing.md): migrate (with the crash tests), postgres, release.
_LONGEST := migrate postgres release tls default
MOLECULE_SCENARIOS ?= $(foreach s,$(_LONGEST),$(filter $(s),$(_SCENARIOS))) $(filter-out $(_LONGEST),$(_SCENARIOS))

.PHONY: help host-setup setup dev collection images docker-check lint sanity unit prometheus-rules integration checks molecule test test-swarm demo demo-down clean

help:
	@echo "make demo        deploy the reference app to the local sandbox host and print its URL"
	@echo "make test        lint + sanity + unit + integration + Molecule (sets up everything first)"
	@echo "make setup       virtualenv ($(VENV)) + the collection built and installed into $(BUILD)"
	@echo "make dev         development install (the checkout via a symlink; then make <target> DEV=1)"
	@echo "make test-swarm  the multi-host scenario (three test hosts, ~15-20 min alone; CI runs it after make test)"
	@echo "make lint | sanity | unit | integration | molecule [MOLECULE_SCENARIOS='default ...']"
	@echo "make demo-down   remove the sandbox host"

# As root on a fresh Debian: installs docker.io, debootstrap, sqlite3, zstd, python3-venv when
# missing and starts dockerd when none answers, saying so (scripts/host-setup.sh).
host-setup:
	@scripts/host-setup.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt | host-setup
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

setup: $(VENV)/.installed collection

# Always rebuilt (a few seconds) so the installed copy never lags behind the checkout. Installed
# beside the old copy and swapped in, so a play running meanwhile keeps a whole collection.
collection: $(VENV)/.installed
ifeq ($(DEV),1)
	@$(MAKE) --no-print-directory dev
else
	@rm -rf $(BUILD)/dist $(BUILD)/collections.new
	ansible-galaxy collection build --force --output-path $(BUILD)/dist . >/dev/null
	ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD))/collections.new ansible-galaxy collection install --offline --no-deps --force -p $(BUILD)/collections.new $(COLLECTION_TARBALL) >/dev/null
	@mkdir -p $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker
	@rm -rf $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy.old
	@if [ -d $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy ]; then \
	  mv $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy.old; fi
	@mv $(BUILD)/collections.new/ansible_collections/moneytracker/deploy $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy
	@rm -rf $(BUILD)/collections.new $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/moneytracker/deploy.old
	@scripts/check-collection-deps.sh
	@echo "installed $(COLLECTION_TARBALL) into $(ANSIBLE_COLLECTIONS_PATH)"
endif

# A development install: the checkout itself as moneytracker.deploy (a symlink), so an edit takes
# effect without rebuilding. Use it with DEV=1 (make demo DEV=1, make unit DEV=1) or by exporting
# the path it prints. The tests in CI always use the built artifact.
dev: $(VENV)/.installed
	@mkdir -p $(BUILD)/dev-collections/ansible_collections/moneytracker
	@ln -sfn $(CURDIR) $(BUILD)/dev-collections/ansible_collections/moneytracker/deploy
	@echo "development install: export ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD))/dev-collections (or make <target> DEV=1)"

docker-check: host-setup
	@docker info >/dev/null 2>&1 || { echo "No Docker engine answers. Install docker.io and start dockerd (see README, or run .ci/run)." >&2; exit 1; }

# Cached: rebuilt only when their inputs change (see the scripts).
images: docker-check
	scripts/build-images.sh testhost
	@if [ -x examples/moneytracker/build.sh ]; then examples/moneytracker/build.sh --local-base --save $(BUILD)/images; fi
	@if [ -x examples/monitoring/build.sh ]; then examples/monitoring/build.sh --local-base --save $(BUILD)/images; fi
	@if [ -x examples/acme/build.sh ]; then examples/acme/build.sh --local-base; fi

lint: setup
	yamllint --strict .
	ansible-lint --profile production
	antsibull-changelog lint
	scripts/role-docs.py --check

# ansible-test sanity (pylint, pep8, validate-modules, ansible-doc, import, compile, yamllint, shebang,
# ...) on a copy of the checkout in $(BUILD)/sanity, no containers (scripts/sanity.sh says how; ignored
# findings with their reasons: tests/sanity/ignore-2.19.txt). SANITY_ARGS='--test pep8' for one test.
sanity: $(VENV)/.installed
	scripts/sanity.sh $(SANITY_ARGS)

# Two processes (pytest-xdist): ~2 min instead of ~3.6 on this 2-core machine; every test has its
# own tmp_path. UNIT_JOBS=0 runs them in one process.
UNIT_JOBS ?= auto
unit: setup
	pytest -n $(UNIT_JOBS) tests/unit

# promtool from PATH, or else the one in the Prometheus test image (built by `make images`).
prometheus-rules: setup images
	@if command -v promtool >/dev/null; then tests/prometheus/run.sh; \
	else PROMTOOL_IMAGE=moneytracker-test/prometheus:debian13 tests/prometheus/run.sh; fi

integration: setup images
	@if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then pytest tests/integration; else echo "no integration tests yet"; fi

# Scenarios run MOLECULE_JOBS at a time (scripts/molecule-scenarios.sh: one log per scenario in
# $(BUILD)/logs, a failed one's tail printed). MOLECULE_ACTION=converge etc. for other actions.
MOLECULE_JOBS ?= 2
MOLECULE_ACTION ?= test
molecule: setup images
	scripts/molecule-scenarios.sh $(BUILD)/logs $(MOLECULE_JOBS) $(MOLECULE_ACTION) $(MOLECULE_SCENARIOS)

# Everything but Molecule, one after the other (`make test` runs it as one job beside the scenarios).
checks: lint sanity unit prometheus-rules integration

# The checks and every scenario, TEST_JOBS at a time: the checks (~7 min) beside the longest
# scenario, the next scenario in their slot when they end, so that the two slots finish together.
# (Three at a time was slower: the scenarios are CPU-bound on this 2-core machine.) A failure of
# either is printed at the end.
TEST_JOBS ?= 2
test: setup images
	@rm -f $(BUILD)/logs/figures-*.txt
	scripts/molecule-scenarios.sh $(BUILD)/logs $(TEST_JOBS) $(MOLECULE_ACTION) \
	  $(wordlist 1,1,$(MOLECULE_SCENARIOS)) @checks $(wordlist 2,99,$(MOLECULE_SCENARIOS))
	@cat $(BUILD)/logs/figures-*.txt 2>/dev/null || true

# The multi-host scenario on its own (three test hosts use the whole machine); CI runs it after
# `make test`.
test-swarm: setup images
	@rm -f $(BUILD)/logs/figures-swarm.txt
	scripts/molecule-scenarios.sh $(BUILD)/logs 1 $(MOLECULE_ACTION) $(_OUTSIDE_TEST)
	@cat $(BUILD)/logs/figures-swarm.txt 2>/dev/null || true

demo: setup images
	scripts/sandbox.sh up
	ansible-playbook -i inventories/sandbox deploy.yml
	scripts/sandbox.sh info

demo-down:
	scripts/sandbox.sh down

clean: demo-down
	rm -rf $(BUILD)
