# genbench — common commands. Everything runs inside the project's virtual environment (.venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

MODEL  ?= dcgan
DATA   ?= imagenet-scenes-tiny
PRESET ?= smoke
N      ?=
SEED   ?= 0
SET    ?=
DEVICES ?=
NODES  ?=
WANDB  ?=
RESUME ?=
SWEEP  ?= configs/sweeps/is-vs-n.yaml
LAUNCHER ?=
TABLE  ?= completion
TABLE_PRESET = $(if $(filter command line,$(origin PRESET)),$(PRESET))
# with RESUME, model, data, preset and seed come from the run folder unless given on the command line
given = $(if $(filter command line,$(origin $(1))),$(2) $($(1)))
RUN_BASE = $(if $(RESUME),$(call given,MODEL,--model) $(call given,DATA,--data) $(call given,PRESET,--preset) \
	$(call given,SEED,--seed),--model $(MODEL) --data $(DATA) --preset $(PRESET) --seed $(SEED))
RUN_ARGS = $(RUN_BASE) $(if $(N),--n $(N)) \
	$(if $(DEVICES),--devices $(DEVICES)) $(if $(NODES),--nodes $(NODES)) $(if $(WANDB),--wandb) \
	$(if $(RESUME),--resume $(RESUME)) $(foreach s,$(SET),--set $(s))
PYTEST_ARGS ?=
CHAOS_RUNS ?= 100
CHAOS_SEED ?= 0

.PHONY: install test test-slow chaos bench fit reference sweep table leaderboard list perf classifiers gpu-wheels gpu-check clean

install:  ## create .venv and install genbench with its dev extra
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev]"

test:  ## the test suite without the fault tests (pytest's exit code 5, "no tests collected", is a failure)
	@$(BIN)/python -m pytest -m "not fault" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-slow:  ## the fault tests: signals, file-size limits and a sweep through submitit with a preempted job
	@$(BIN)/python -m pytest -m fault $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-slow: pytest collected no tests" >&2; exit 1; fi; exit $$rc

chaos:  ## the randomized fault campaign: CHAOS_RUNS short runs on the digits, each hit by one fault, invariants checked → docs/chaos.json, docs/reliability.md
	$(BIN)/python benchmarks/chaos.py --runs $(CHAOS_RUNS) --seed $(CHAOS_SEED) --report docs/chaos.json \
		--markdown docs/reliability.md

bench:  ## train + sample + score MODEL on DATA and append a leaderboard row
	$(BIN)/genbench bench $(RUN_ARGS)

fit:  ## train only (checkpoint under runs/)
	$(BIN)/genbench fit $(RUN_ARGS)

reference:  ## score the reference rows (real images, noise) into PRESET's table of DATA (N=100,50: these n; default: the table's)
	$(BIN)/genbench reference --data $(DATA) --preset $(PRESET) --seed $(SEED) $(if $(N),--n [$(N)]) $(foreach s,$(SET),--set $(s))

sweep:  ## run the grid of SWEEP (skips finished rows, resumes unfinished runs); LAUNCHER=slurm: a SLURM job array (docs/scale.md)
	$(BIN)/genbench sweep --config $(SWEEP) --devices $(or $(DEVICES),1) $(if $(LAUNCHER),--launcher $(LAUNCHER)) \
		$(foreach s,$(SET),--set $(s))

table:  ## one of the papers' other tables: TABLE=<name> (`make list` names them) [DATA=…] [PRESET=cpu|paper]
	$(BIN)/genbench table --table $(TABLE) --preset $(or $(TABLE_PRESET),cpu) \
	$(if $(filter command line,$(origin DATA)),--data $(DATA)) $(foreach s,$(SET),--set $(s))

leaderboard:  ## render leaderboards/<data>/<table>.md from the JSONL rows; refresh the task tables' notes
	$(BIN)/genbench leaderboard

list:  ## the registered models, datasets, metrics and tables
	$(BIN)/genbench list

perf:  ## genbench vs plain PyTorch and the speed levers → leaderboards/perf.md (PERF_ARGS="--shapes cpu"); PERF_PRESET=cpu: per-model cpu-preset timings
	$(BIN)/python benchmarks/perf $(if $(PERF_PRESET),--preset $(PERF_PRESET)) $(PERF_ARGS)

classifiers:  ## retrain the shipped offline classifiers (new feature spaces: committed rows keep theirs) → assets/classifiers
	$(BIN)/genbench classifier --data imagenet-scenes-tiny --preset cpu --name imagenet-scenes-tiny-32px-stretch-minmax
	$(BIN)/genbench classifier --data imagenet-scenes-tiny --preset cpu --set data.resize=crop --set data.pixel_norm=fixed \
		--set bench.table=cpu-crop --name imagenet-scenes-tiny-32px
	$(BIN)/genbench classifier --data imagenet-scenes-tiny --preset smoke --name imagenet-scenes-tiny-64px
	$(BIN)/genbench classifier --data mnist --preset smoke --name mnist-28px
	$(BIN)/genbench classifier --data cifar10-subset --preset cpu --name cifar10-subset-32px-stretch-minmax

gpu-wheels:  ## download the wheels the GPU machine lacks (torch-fidelity, jsonargparse, …; Python 3.12, manylinux x86-64) into .whl/
	$(BIN)/python benchmarks/gpu_check.py --wheels

GPU_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:  ## the whole GPU check in one command (CUDA tests, perf, paper rows) → gpu-check-out/; DRY=1: toy size on the CPU
	$(GPU_PYTHON) benchmarks/gpu_check.py $(if $(DRY),--dry) $(if $(OUT_DIR),--out $(OUT_DIR)) $(if $(BUDGET),--budget $(BUDGET))

clean:
	rm -rf runs lightning_logs .pytest_cache
