# workflowd — see README.md. Every target works on a fresh machine with Go.
GO       ?= go
DATA     ?= ./data
ADDR     ?= 127.0.0.1:8080
## Fuzzing budgets are counts of inputs, not durations: a duration-based
## -fuzztime races the fuzz coordinator's own deadline on Go 1.26 and fails
## with a bare "context deadline exceeded" and no crasher (golang/go#75804).
## About 5 s each on this machine.
FUZZ_MODEL ?= 300000x
FUZZ_API ?= 20000x
FUZZ_APP ?= 20000x
FUZZ_EXPR ?= 20000x
FUZZ_DEFINITION ?= 20000x
# Packages with goroutines of their own; -race runs on all of them anyway.
PKGS     := ./...

.PHONY: run run-aws build test vet lint fuzz bench simulate clean \
	build-IamApiFunction build-JwtApiFunction build-WorkerFunction build-StreamFunction build-CleanupFunction

## run: the whole service in one process on the embedded store (API on $(ADDR), data under $(DATA))
run:
	$(GO) run ./cmd/workflowd -addr $(ADDR) -data $(DATA)

## run-aws: workflowd on DynamoDB Local and fauxqs (SNS/SQS), started for the
## run and stopped after it; workflowd init creates the tables, topic and
## queues first (serving never creates or changes them)
run-aws:
	bash .ci/localstack/with-stack.sh sh -c '$(GO) run ./cmd/workflowd init && $(GO) run ./cmd/workflowd -backend aws -addr $(ADDR)' 

## build: a static binary in bin/ (no cgo)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/workflowd ./cmd/workflowd

## build-<LogicalId>: SAM's makefile build method (`sam build`): each
## function's bootstrap for provided.al2023 on arm64, in $(ARTIFACTS_DIR)
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags=-s -o $(ARTIFACTS_DIR)/bootstrap
build-IamApiFunction build-JwtApiFunction:
	$(LAMBDA_BUILD) ./cmd/api-function
build-WorkerFunction:
	$(LAMBDA_BUILD) ./cmd/worker-function
build-StreamFunction:
	$(LAMBDA_BUILD) ./cmd/stream-function
build-CleanupFunction:
	$(LAMBDA_BUILD) ./cmd/cleanup-function

## test: gofmt and vet (lint), every test with the race detector (with DynamoDB Local and fauxqs
## started for the AWS integration tests), then a short pass of each fuzz target.
## The table package runs first, on its own: DynamoDB Local can leave an index
## added to an existing table CREATING for ever once it holds many tables
## (docs/architecture-log.md, entry 24).
## The simulator (internal/sim) plays its 2,000 seeds without the race
## detector (about 10 s; eight times that with it) and 200 with it.
test: lint
	bash .ci/localstack/with-stack.sh sh -c '$(GO) test -race -count=1 ./table/ && $(GO) test -race -count=1 $$($(GO) list $(PKGS) | grep -v -e "/table$$" -e "/internal/sim$$")'
	SIM_SEEDS=200 $(GO) test -race -count=1 ./internal/sim
	$(GO) test -count=1 -v -run '^TestSeeds$$' ./internal/sim
	$(MAKE) --no-print-directory fuzz

## simulate: the deterministic simulator over SIM_SEEDS seeds from SIM_FIRST
## (docs/architecture-log.md, entry 39); a failing seed prints how to replay it
SIM_SEEDS ?= 100000
SIM_FIRST ?= 1
simulate:
	SIM_SEEDS=$(SIM_SEEDS) SIM_FIRST=$(SIM_FIRST) $(GO) test -count=1 -timeout 60m -run '^TestSeeds$$' -v ./internal/sim

vet:
	$(GO) vet $(PKGS)

## lint: formatting and vet
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: each fuzz target for its budget of inputs
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZ_MODEL) -fuzzminimizetime 1000x ./model
	$(GO) test -run '^$$' -fuzz '^FuzzRequestDecoding$$' -fuzztime $(FUZZ_API) -fuzzminimizetime 200x ./api
	$(GO) test -run '^$$' -fuzz '^FuzzParseStreamFailure$$' -fuzztime $(FUZZ_APP) -fuzzminimizetime 200x ./app
	$(GO) test -run '^$$' -fuzz '^FuzzCompile$$' -fuzztime $(FUZZ_EXPR) -fuzzminimizetime 200x ./expr
	$(GO) test -run '^$$' -fuzz '^FuzzDefinition$$' -fuzztime $(FUZZ_DEFINITION) -fuzzminimizetime 200x ./model

## bench: store and bus micro-benchmarks, the stream handler with 5 ms calls,
## the end-to-end benchmark of workflowd, then the cost per step on AWS and
## one stream shard's throughput (measured on the local stack)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./store/pebble ./bus/local ./model
	$(GO) test -run '^$$' -bench 'StreamBatch' -benchtime 1x ./workers
	CGO_ENABLED=0 $(GO) build -o bin/workflowd ./cmd/workflowd
	$(GO) run ./cmd/workflowd-bench -bin bin/workflowd
	$(GO) run ./cmd/workflowd-bench -bin bin/workflowd -workload http
	$(GO) run ./cmd/workflowd-bench -bin bin/workflowd -workload order
	bash .ci/localstack/with-stack.sh $(GO) test -run '^$$' -bench 'AWSStepCost' -benchtime 1000x ./app
	bash .ci/localstack/with-stack.sh $(GO) test -run '^$$' -bench 'AWSEngineStepCost' -benchtime 1x ./app
	bash .ci/localstack/with-stack.sh $(GO) test -run '^$$' -bench 'StreamShard' -benchtime 1x -count 2 ./app
	bash .ci/localstack/with-stack.sh $(GO) test -run '^$$' -bench 'PartitionHeat' -benchtime 1x ./app

clean:
	rm -rf bin $(DATA)
