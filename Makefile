# SyncReel: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
BIND ?= 127.0.0.1:8080

.PHONY: demo test setup build release lint unit browser bench bench-clock bench-fanout bench-rtc-fanout clean

## Install what is missing, build, and run a server with a demo session.
demo: setup release
	./target/release/syncreel demo --bind $(BIND)

## Every check CI runs: formatting, lints, Rust tests, browser tests.
test: setup lint unit browser

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --locked

browser: build
	cd web-client && SYNCREEL_BIN=$(CURDIR)/target/debug/syncreel npm test

## Benchmarks: figures go in docs/benchmarks.md.
bench: bench-clock bench-fanout

bench-clock:
	$(CARGO) bench --locked --bench clock

bench-fanout: release
	ulimit -n 65536 2>/dev/null || true; SYNCREEL_BIN=$(CURDIR)/target/release/syncreel $(CARGO) bench --locked --bench fanout

## WebRTC viewers of a playing 720p session, SyncReel beside Janus (installs Janus).
bench-rtc-fanout: release
	bash scripts/bench-setup.sh
	ulimit -n 65536 2>/dev/null || true; SYNCREEL_BIN=$(CURDIR)/target/release/syncreel $(CARGO) bench --locked --bench rtc_fanout

## Browser video benchmarks (real Chromium; the netem part needs root). BENCH_* variables: see docs/benchmarks.md.
## How long a look of one's own at a noted frame takes (GET …/still/{frame}).
.PHONY: bench-still
bench-still:
	$(CARGO) bench --locked --bench still

.PHONY: bench-browser
bench-browser: release
	cd web-client && SYNCREEL_BIN=$(CURDIR)/target/release/syncreel node bench/video-bench.mjs

clean:
	$(CARGO) clean
