# caretflow: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= churn
OVERRIDES ?=
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export PYTHONPATH := $(CURDIR)
# `mlflow run` starts the steps with `python`: make it the project's interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup system-deps run train serve ui test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Debian packages for some tests and the benchmarks (wrk, ab, promtool, chromium); root + apt-get.
# Never fails: a package it cannot install is a loud warning, and the tests needing it skip.
system-deps:
	@bash .ci/system-deps

train: setup
	$(BIN)/python -m caretflow.tracking ensure-experiment $(DATASET)
	$(BIN)/mlflow run . -e main --env-manager local --experiment-name caretflow-$(DATASET) \
		-P dataset=$(DATASET) -P overrides="$(OVERRIDES)"

serve: setup
	$(BIN)/python -m app.devkeys
	@if [ -z "$$API_KEYS$$ADMIN_API_KEYS" ]; then set -a; . ./.caretflow/dev_keys.env; set +a; fi; \
	exec $(BIN)/gunicorn -c app/gunicorn.conf.py 'app:create_app()'

run: train serve

# Batch scoring (docs/scale-out.md): make score INPUT='data/*.csv' OUTPUT=scores.parquet
#   [MODEL=churn@champion KEEP=CustomerId COMPUTE=dask] (dask: DASK_SCHEDULER_ADDRESS).
.PHONY: score
MODEL ?= $(DATASET)@champion
KEEP ?=
COMPUTE ?= local
SCORE_NAME = $(firstword $(subst @, ,$(subst /, ,$(MODEL))))
score: setup
	@test -n "$(INPUT)" && test -n "$(OUTPUT)" || { echo "usage: make score INPUT=<file, folder or glob> OUTPUT=<folder or .parquet> [MODEL=name@alias KEEP=cols COMPUTE=local|dask]"; exit 1; }
	$(BIN)/python -m caretflow.tracking ensure-experiment $(SCORE_NAME)
	$(BIN)/mlflow run . -e score --env-manager local --experiment-name caretflow-$(SCORE_NAME) \
		-P model=$(MODEL) -P input="$(INPUT)" -P output="$(OUTPUT)" -P keep="$(KEEP)" \
		-P compute=$(COMPUTE) -P overrides="$(OVERRIDES)"

# Monitoring report of a model's prediction log (docs/monitoring.md):
#   make monitor [MODEL_NAME=churn WINDOW_HOURS=24 PREDICTION_DB=sqlite:///...]
.PHONY: monitor
MODEL_NAME ?= $(DATASET)
WINDOW_HOURS ?= 24
PREDICTION_DB ?= $(PREDICTION_DB_URL)
monitor: setup
	$(BIN)/python -m caretflow.tracking ensure-experiment $(MODEL_NAME)
	$(BIN)/mlflow run . -e monitor --env-manager local --experiment-name caretflow-$(MODEL_NAME) \
		-P model=$(MODEL_NAME) -P window_hours=$(WINDOW_HOURS) -P prediction_db="$(PREDICTION_DB)"

# Retrain a model from its production feedback (steps/retrain.py, docs/retraining.md):
#   make retrain [MODEL_NAME=churn RETRAIN_WINDOW_HOURS=720 POLICY=append
#                 PREDICTION_DB=sqlite:///... OVERRIDES="retrain.promote=direct" FORCE=false]
.PHONY: retrain
RETRAIN_WINDOW_HOURS ?= 720
POLICY ?= append
FORCE ?= false
retrain: setup
	$(BIN)/python -m caretflow.tracking ensure-experiment $(MODEL_NAME)
	$(BIN)/mlflow run . -e retrain --env-manager local --experiment-name caretflow-$(MODEL_NAME) \
		-P dataset=$(MODEL_NAME) -P window_hours=$(RETRAIN_WINDOW_HOURS) \
		-P policy=$(POLICY) -P prediction_db="$(PREDICTION_DB)" -P overrides="$(OVERRIDES)" \
		-P force=$(FORCE)

# The watcher (steps/watch.py): WATCH_ARGS="--once --dry-run", "--url http://... watch.consecutive=3".
.PHONY: watch
WATCH_ARGS ?=
watch: setup
	$(BIN)/python -m steps.watch --model $(MODEL_NAME) $(WATCH_ARGS)

ui: setup
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --default-artifact-root $(CURDIR)/mlartifacts --port 5000

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

# Serving + training benchmarks from one run on this machine -> bench/results/, docs/benchmarks.md
BENCH_WORK ?= /tmp/caretflow-bench
BENCH_URI = sqlite:///$(BENCH_WORK)/registry/mlflow.db
bench: setup
	@command -v wrk >/dev/null && command -v ab >/dev/null || { echo "the serving bench needs wrk and ab: make system-deps"; exit 1; }
	$(BIN)/python -m bench.registry --workdir $(BENCH_WORK)/registry
	$(BIN)/python -m bench.serve_floor --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.serve_compare --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.worker_close --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.request_budget --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.ack_probe --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.serve_batch --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.batch_phases --tracking-uri $(BENCH_URI)
	$(BIN)/python -m bench.log_writers
	$(BIN)/python -m bench.train_pipeline --profile quick
	$(BIN)/python -m bench.train_pipeline --profile full
	$(BIN)/python -m bench.scale_out --tracking-uri $(BENCH_URI) --memory-rows 5000000
	$(BIN)/python -m bench.report

clean:
	rm -rf outputs multirun .pytest_cache

# Hardening (docs/reliability.md): dependency audit, load + fault scripts, deep API fuzzing.
.PHONY: audit load fuzz
LOAD_SCENARIOS ?= load

audit: setup
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --progress-spinner off

load: setup
	@for s in $(LOAD_SCENARIOS); do $(BIN)/python -m bench.faults_run $$s || exit 1; done

fuzz: setup
	$(BIN)/python -m bench.fuzz_api --examples 300
