# SyncReel: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
BIND ?= 127.0.0.1:8080

.PHONY: demo test setup build release lint unit browser cluster-check cluster-demo bench bench-clock bench-fanout bench-rtc-fanout clean

## Install what is missing, build, and run a server with a demo session.
demo: setup release
	./target/release/syncreel demo --bind $(BIND)

## Every check CI runs: formatting, lints, Rust tests (tests/cluster_leases.rs
## starts its own throwaway nats-server), browser tests, and the throwaway
## NATS and PostgreSQL scripts the cluster tests use (docs/cluster.md).
test: setup cluster-check lint unit browser

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

## A cluster on this machine: NATS, PostgreSQL and three nodes, with links
## that land on different nodes (scripts/cluster/demo.sh; Ctrl-C stops it).
cluster-demo: setup release
	bash scripts/cluster/demo.sh

## scripts/cluster/{nats,postgres}.sh start, answer and stop cleanly (a few seconds).
cluster-check:
	bash scripts/cluster/check.sh

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

## Encoder CPU per session, VP8 against H.264, at 720p and 1080p. ENCODER_* variables: see docs/benchmarks.md.
.PHONY: bench-encoder
bench-encoder:
	$(CARGO) bench --locked --bench encoder

.PHONY: bench-browser
bench-browser: release
	cd web-client && SYNCREEL_BIN=$(CURDIR)/target/release/syncreel node bench/video-bench.mjs

## Fuzzing (cargo-fuzz, nightly): each target for FUZZ_SECS seconds in turn,
## growing fuzz/corpus/<target>; `make fuzz-cmin` minimises the corpora.
## `make unit` replays the corpora without sanitizers. See docs/fuzzing.md.
FUZZ_SECS ?= 600
FUZZ_TARGETS ?= client_message timecode mov_timecode rest_body drawing
FUZZ_TOOLCHAIN ?= +nightly

.PHONY: fuzz fuzz-cmin
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		$(CARGO) $(FUZZ_TOOLCHAIN) fuzz run $$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 || exit 1; \
	done

fuzz-cmin:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		$(CARGO) $(FUZZ_TOOLCHAIN) fuzz cmin $$t -- -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 || exit 1; \
	done

clean:
	$(CARGO) clean
