# jobfn — common tasks. `make help` lists them.
PYTHON ?= python3
PORT ?= 8080

.PHONY: help install run test lint typecheck unit soak cluster-build cluster-up cluster-down bench bench-smoke

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## install jobfn and its test tools (pip install -e '.[test]')
	$(PYTHON) -m pip install -q -e '.[test]'

run: install ## serve the function on http://localhost:$(PORT) (starts the local cluster unless $$KUBECONFIG reaches one)
	PORT=$(PORT) deploy/local/run.sh

test: install lint typecheck ## run every test: lint, types, import contracts, unit, integration, e2e
	$(PYTHON) -m pytest

lint: ## ruff, the import contracts, and deptry (every imported module a declared dependency)
	ruff check .
	ruff format --check .
	lint-imports
	deptry .

typecheck: ## mypy --strict on function/, reaper/ and bench/
	mypy

unit: ## the fast tests that need no cluster
	$(PYTHON) -m pytest tests/unit

soak: install cluster-build ## the fault tests for longer: 10,000 submissions through outages and kills; prints the figures
	$(PYTHON) -m tests.reliability.soak

cluster-build: ## build the control plane's binaries once per machine (cached in ~/.cache/jobfn)
	tests/cluster/build.sh

cluster-up: cluster-build ## start the local control plane; prints `export KUBECONFIG=...`
	$(PYTHON) -m tests.cluster up

cluster-down: ## stop the local control plane and remove its state
	$(PYTHON) -m tests.cluster down

bench: install ## measure jobfn beside the direct client and k8s-jobs (< 15 min); table + bench/results/*.json
	$(PYTHON) -m bench

bench-smoke: install ## the benchmark with tiny counts: proves the harness works, measures nothing
	$(PYTHON) -m bench --smoke
