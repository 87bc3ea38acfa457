# mode-interp: `make book` builds the executed HTML book, `make test` runs the tests (both set up .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BOOK_HTML := _build/html
# FULL=1 runs the chapters at paper scale; the default is the reduced FAST mode.
FULL ?= 0
FAST_ENV := MODE_INTERP_FAST=$(if $(filter 1,$(FULL)),0,1)
# test processes (pytest-xdist; each file's tests stay in one process, one torch thread each: tests/conftest.py)
TEST_JOBS ?= 2
CHAPTER ?= 01
PARAMS ?=

.PHONY: venv book test run lab serve bench clean

venv: $(STAMP)
$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Chapters run one after another, each on every core: two side by side on one torch thread each were slower
# on a 2-core CI machine (1,559 s of execution against about 1,490 s; jupyter-cache's parallel executor).
book: venv
	$(FAST_ENV) $(BIN)/jupyter-book build . -W --keep-going --path-output .
	@echo "Book written to $(CURDIR)/$(BOOK_HTML)/index.html"
	@echo "Serve it (widgets need http): $(BIN)/python -m http.server -d $(BOOK_HTML) 8000, then open http://127.0.0.1:8000"

test: venv
	MODE_INTERP_FAST=1 $(BIN)/python -m pytest tests book --nbmake --nbmake-timeout=3600 -p no:cacheprovider \
	  -n $(TEST_JOBS) --dist loadfile

run: venv
	@mkdir -p runs
	$(FAST_ENV) $(BIN)/papermill $$(ls book/$(CHAPTER)_*.ipynb) runs/$$(basename $$(ls book/$(CHAPTER)_*.ipynb)) --cwd book $(PARAMS)
	@echo "Executed copy: runs/$$(basename $$(ls book/$(CHAPTER)_*.ipynb))"

# The chapters live in JupyterLab on 127.0.0.1 (widgets included), FAST sizes unless FULL=1.
lab: venv
	$(FAST_ENV) $(BIN)/jupyter lab --ip 127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root,) --ServerApp.root_dir=$(CURDIR) $(wildcard book/0*.ipynb)

bench: venv
	$(BIN)/python benchmarks/run.py --json benchmarks/results.json --readme README.md

serve: $(BOOK_HTML)/index.html
	$(BIN)/python -m http.server -d $(BOOK_HTML) --bind 127.0.0.1 8000

clean:
	rm -rf _build runs .pytest_cache
