# The two commands of the README. Both run scripts/setup.sh first, which does only what is missing.
.PHONY: setup demo test lint

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/hil profile examples/models/digits-dscnn.tflite --board qemu-m4

test: setup
	.venv/bin/pytest -q

lint: setup
	.venv/bin/ruff check .
