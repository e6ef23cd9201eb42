# outcall: the two commands a new user needs (README.md).
#   make demo   set up and run the demo: a real call over softspan
#   make test   set up and run the whole test suite (what CI runs)
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup test demo lint licences build unit doc-tests check-units

setup:
	@bash scripts/setup.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

licences:
	bash scripts/check-licences.sh

build:
	$(CARGO) build --workspace --bins

# Doc tests first: the suite's last line is then the runner's summary of every test.
unit: build
	$(CARGO) test --workspace --doc -q
	@if command -v cargo-nextest >/dev/null; then \
	    $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	    $(CARGO) test --workspace --no-fail-fast; \
	fi

test: setup lint licences unit

demo: setup build
	@bash scripts/demo.sh
