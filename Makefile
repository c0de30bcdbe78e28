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
PYTEST_ARGS ?=

.PHONY: install test bench fit leaderboard list perf clean

install:  ## create .venv and install genbench with its dev extra
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"

test:  ## the test suite (pytest's exit code 5, "no tests collected", is a failure)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench:  ## train + sample + score MODEL on DATA and append a leaderboard row
	$(BIN)/genbench bench --model $(MODEL) --data $(DATA) --preset $(PRESET) --seed $(SEED) \
		$(if $(N),--n $(N)) $(foreach s,$(SET),--set $(s))

fit:  ## train only (checkpoint under runs/)
	$(BIN)/genbench fit --model $(MODEL) --data $(DATA) --preset $(PRESET) --seed $(SEED) \
		$(if $(N),--n $(N)) $(foreach s,$(SET),--set $(s))

leaderboard:  ## render leaderboards/<data>/<table>.md from the JSONL rows
	$(BIN)/genbench leaderboard

list:
	$(BIN)/genbench list

perf:  ## speed benchmarks (not part of the tests)
	$(BIN)/python benchmarks/perf.py

clean:
	rm -rf runs lightning_logs .pytest_cache
