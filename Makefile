# Every target creates what it needs: on a fresh machine `make run` and `make test` are the set-up.
PYTHON ?= python3
VENV := .venv
# aws-sam-cli and checkov pin conflicting versions of shared packages: one environment each.
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
# The simulated API's rate limit. Unset, `make run` allows 8 requests a minute (low, so that some
# webhooks meet a 429) and `make serve` any number. RATE_LIMIT=N: N a minute; RATE_LIMIT_HOUR=N:
# N an hour; TIER=trial (500 a minute plus 5,000 an hour), paid (5,000 a minute) or unlimited.
# Numbers given beside a TIER override the tier's own (docs/SIMULATOR.md).
RATE_LIMIT ?=
RATE_LIMIT_HOUR ?=
TIER ?=
RATE_FLAGS = $(strip $(if $(TIER),--tier $(TIER)) $(if $(RATE_LIMIT),--rate-limit $(RATE_LIMIT)) \
	$(if $(RATE_LIMIT_HOUR),--rate-limit-hour $(RATE_LIMIT_HOUR)))
# Where `make run` and `make serve` point, read as variables of these names (make hands its
# command-line variables to the recipe's environment), from the environment, or from local.env
# (git-ignored; see local.env.example): SENSOR_DATA_API_URL, IMS_TOKEN_URL, IMS_CLIENT_ID,
# IMS_CLIENT_SECRET, IMS_ACCESS_TOKEN, ITWIN_ID, BRIDGE_CONFIG_FILE, WEBHOOK_SECRETS_FILE,
# BRIDGE_PORT, LOCAL_ENV_FILE (another settings file); the three rate-limit variables too.
# Secrets are never on the command line make echoes. CONFIG= and SECRETS=, as check-config takes
# them, name the configuration and webhook secrets files too.
# (CONFIG only when given: check-config's default must not override BRIDGE_CONFIG_FILE.)
GIVEN = $(filter command line environment,$(origin $(1)))
LOCAL_FILES = $(strip $(if $(call GIVEN,CONFIG),--config $(CONFIG)) $(if $(SECRETS),--secrets $(SECRETS)))
# sam build needs the Lambda runtime's interpreter (python3.13) on PATH; pyenv provides it here.
PY313 ?= $(or $(lastword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13)),$(shell command -v python3.13 2>/dev/null))
export PYTHONPATH := layers/bridge:functions/webhook:functions/retry:.
# The tools check the template here; they have no business calling home.
export SAM_CLI_TELEMETRY := 0

.PHONY: help run serve check check-config format test test-py313 unit lint typecheck template-checks sam-build bench clean

## help: this list (every target with a `## target:` line)
help:
	@grep -E '^## [a-z0-9-]+:' $(MAKEFILE_LIST) | sed -E 's/^## ([a-z0-9-]+): /  \1\t/' | expand -t 20

$(VENV)/.installed: requirements-dev.txt requirements-translator.txt layers/bridge/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-translator.txt
	touch $@

# The Lambda runtime's Python, for the test suite's second run (the first runs on $(PYTHON)).
VENV313 := .venv-py313
$(VENV313)/.installed: requirements-dev.txt requirements-translator.txt layers/bridge/requirements.txt
	@test -n "$(PY313)" || { echo "python3.13 not found (set PY313=/path/to/python3.13)"; exit 1; }
	$(PY313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(VENV313)/bin/python -m pip install --quiet --no-deps -r requirements-translator.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

## run: the whole bridge on the embedded local stack, replaying events/, then a summary
run: $(VENV)/.installed
	$(PY) -m local.stack run $(RATE_FLAGS) $(LOCAL_FILES)

## serve: keep the local stack up for your own webhooks (Ctrl-C stops it)
serve: $(VENV)/.installed
	$(PY) -m local.stack serve $(RATE_FLAGS) $(LOCAL_FILES)

## check-config: every problem of a configuration file (CONFIG=...), and its secrets (SECRETS=...)
CONFIG ?= config/bridge.yaml
check-config: $(VENV)/.installed
	$(PY) -m sensor_bridge.config check $(CONFIG) $(if $(SECRETS),--secrets $(SECRETS))

## test: lint, types, the four template checks, then the whole test suite on both Pythons
test: lint typecheck template-checks sam-build
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-py313

## check: the quick loop while you work: lint, types and the unit tests (no python3.13, no SAM)
check: lint typecheck unit

## format: ruff fixes what it can and formats everything
format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## test-py313: the test suite on python3.13, the Lambda runtime's version
test-py313: $(VENV313)/.installed
	$(VENV313)/bin/python -m pytest -q

## unit: the unit tests only (pure logic, fakes at the ports)
unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

## lint: ruff check and ruff format --check
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## typecheck: mypy --strict
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

## template-checks: cfn-lint, sam validate --lint and checkov on template.yaml, offline
template-checks: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region eu-west-1
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --framework cloudformation --file template.yaml --skip-download

## sam-build: sam build for python3.13 on arm64, as the deployment does
sam-build: $(SAM_VENV)/.installed
	@test -n "$(PY313)" || { echo "sam build needs python3.13 on PATH (set PY313=/path/to/python3.13)"; exit 1; }
	PATH="$(dir $(PY313)):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build

## bench: every benchmark under bench/, each writing JSON to bench/results/
bench: $(VENV)/.installed
	$(PY) -m bench.run_all

## clean: remove the virtual environments and caches
clean:
	rm -rf $(VENV) $(VENV313) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
