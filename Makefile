# The two commands of the README. Both run scripts/setup.sh first, which does only what is missing.
.PHONY: setup demo test lint

setup:
	@scripts/setup.sh

# The main job: a short search (12 digits ResNets measured on qemu-m4) and its report. A second
# `make demo` reuses runs/demo (or continues it if it was interrupted); delete it to search anew.
DEMO_RUN := runs/demo
demo: setup
	@if [ -f $(DEMO_RUN)/search.db ]; then \
		.venv/bin/hil search --resume $(DEMO_RUN); \
	else \
		.venv/bin/hil search examples/search-digits-demo.toml --out $(DEMO_RUN); \
	fi
	.venv/bin/hil report $(DEMO_RUN) --html $(DEMO_RUN)/report.html

# The suite in TEST_JOBS processes (pytest-xdist), a test file per process at a time so each
# file's fixtures are set up once: about half the wall time on 2 cores. TEST_JOBS=0 runs it in
# this process.
TEST_JOBS ?= 2
test: setup
	.venv/bin/pytest -q -n $(TEST_JOBS) --dist loadfile

lint: setup
	.venv/bin/ruff check .
