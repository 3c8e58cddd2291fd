# Skiff — `make` alone prints this help.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/skiff
FUZZTIME ?= 20s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the skiff binary into bin/skiff.
	$(GO) build -ldflags "-X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)" -o $(BIN) ./cmd/skiff

.PHONY: test
test: ## Run every test with the race detector (what CI runs).
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: test-kfp
test-kfp: ## Run the KFP corpus through skiff run (vs cmd/skiff/testdata/kfp_conformance.tsv) and the kfp.local comparison (minutes; needs ../shared).
	SKIFF_KFP_CONFORMANCE=1 $(GO) test -count=1 -timeout 60m -run '^(TestKFPConformance|TestCLI_KFPLocalComparison)$$' -parallel 4 -v ./cmd/skiff/

.PHONY: check
check: ## go vet, gofmt and the import rules.
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 -run 'TestImports' ./scheduler/

BENCH_WORKLOADS ?= fanout-10000 parallelfor-10000 chain-1000 lattice-100x10 cached-10000 proc-chain-1000 proc-fanout-1000
BENCH_PEERS     ?= all
BENCH_FLAGS     ?= --peer-timeout 3m

.PHONY: bench
bench: build ## skiff bench with peers (durable); writes bench/results.json.
	$(BIN) bench --peers $(BENCH_PEERS) --save bench/results.json $(BENCH_FLAGS) $(BENCH_WORKLOADS)

.PHONY: gobench
gobench: ## Run the Go benchmarks (store, scheduler, engine).
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s).
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: demo
demo: build ## Build skiff and run the Iris example in a scratch data dir.
	$(BIN) run --data-dir .demo-data examples/iris/pipeline.yaml

KUBE_TOOLS := tools/kube

.PHONY: kube-build
kube-build: ## Build etcd, kube-apiserver, kube-scheduler and kwok into the cache (minutes, once).
	nice -n 10 $(KUBE_TOOLS)/build.sh

.PHONY: kube-up
kube-up: ## Start a loopback Kubernetes control plane (etcd, apiserver, scheduler, kwok); prints the kubeconfig path.
	@$(KUBE_TOOLS)/up.sh

.PHONY: kube-down
kube-down: ## Stop what kube-up started.
	@$(KUBE_TOOLS)/down.sh

.PHONY: test-kube
test-kube: ## kube-up, the kube executor's integration tests, kube-down.
	@kc=$$($(KUBE_TOOLS)/up.sh) && \
	  SKIFF_KUBECONFIG=$$kc $(GO) test -race -count=1 -timeout 15m -v -run 'Kube' ./executors/kube/ ./cmd/skiff/; \
	  rc=$$?; $(KUBE_TOOLS)/down.sh; exit $$rc
