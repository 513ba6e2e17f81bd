# jobfn — common tasks. `make help` lists them.
# Everything runs from a project virtualenv (.venv) that `make install` creates with the
# system's python3 and fills from pyproject.toml; the system Python is never installed into.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_PYTHON := $(BIN)/python
INSTALLED := $(VENV)/.installed
PORT ?= 8080

.PHONY: help install run test lint typecheck unit soak cluster-build cluster-up cluster-down knative-build knative-up bench bench-smoke

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_PYTHON):
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "$(PYTHON) cannot make a virtualenv: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-installed when pyproject.toml changes (the editable install follows source edits itself).
$(INSTALLED): pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

install: $(INSTALLED) ## create .venv and install jobfn and its test tools into it (pip install -e '.[test]')

run: install ## serve the function on http://localhost:$(PORT) (starts the local cluster unless $$KUBECONFIG reaches one)
	PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) deploy/local/run.sh

TEST_WORKERS ?= 2
test: install lint typecheck ## run every test: lint, types, import contracts, unit, integration, e2e
	$(VENV_PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

lint: install ## ruff, the import contracts, and deptry (every imported module a declared dependency)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry .

typecheck: install ## mypy --strict on function/, reaper/ and bench/
	$(BIN)/mypy

unit: install ## the fast tests that need no cluster
	$(VENV_PYTHON) -m pytest tests/unit

soak: install cluster-build ## the fault tests for longer: 10,000 submissions through outages and kills; prints the figures
	$(VENV_PYTHON) -m tests.reliability.soak

cluster-build: ## build the control plane's binaries once per machine (cached in ~/.cache/jobfn)
	tests/cluster/build.sh

cluster-up: install cluster-build ## start the local control plane; prints `export KUBECONFIG=...`
	$(VENV_PYTHON) -m tests.cluster up

knative-build: ## build Knative Serving, Eventing and Traefik once per machine (cached in ~/.cache/jobfn)
	tests/knative/build.sh

knative-up: install cluster-build knative-build ## install Knative + Traefik into the local cluster (started if needed; idempotent)
	$(VENV_PYTHON) -m tests.knative up

cluster-down: install ## stop the local control plane and remove its state
	$(VENV_PYTHON) -m tests.cluster down

bench: install ## measure jobfn beside the direct client, a hello-world and k8s-jobs, at scale too (< 20 min); table + bench/results/*.json
	$(VENV_PYTHON) -m bench

bench-smoke: install ## the benchmark with tiny counts: proves the harness works, measures nothing
	$(VENV_PYTHON) -m bench --smoke
