# Skiff — `make` alone prints this help.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/skiff
FUZZTIME ?= 20s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the skiff binary into bin/skiff.
	$(GO) build -ldflags "-X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)" -o $(BIN) ./cmd/skiff

.PHONY: test
test: ## Run every test with the race detector (what CI runs).
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: test-kfp
test-kfp: ## Run the KFP corpus through skiff run (vs cmd/skiff/testdata/kfp_conformance.tsv) and the kfp.local comparison (minutes; needs ../shared).
	SKIFF_KFP_CONFORMANCE=1 $(GO) test -count=1 -timeout 60m -run '^(TestKFPConformance|TestCLI_KFPLocalComparison)$$' -parallel 4 -v ./cmd/skiff/

IMAGE   ?= skiff:dev
BUSYBOX ?= /bin/busybox

.PHONY: image
image: ## Build the container image IMAGE (default skiff:dev): a static skiff and BUSYBOX in a docker-imported root.
	@set -e; root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	test -x $(BUSYBOX) || { echo "$(BUSYBOX) missing: apt-get install busybox-static"; exit 1; }; \
	mkdir -p $$root/bin $$root/etc $$root/tmp $$root/root $$root/data; chmod 1777 $$root/tmp; chmod 700 $$root/root; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)" -o $$root/bin/skiff ./cmd/skiff; \
	cp $(BUSYBOX) $$root/bin/busybox; \
	for a in $$($(BUSYBOX) --list); do [ "$$a" = busybox ] || ln -s busybox "$$root/bin/$$a"; done; \
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > $$root/etc/passwd; \
	printf 'root:x:0:\nnogroup:x:65534:\n' > $$root/etc/group; \
	tar -C $$root --numeric-owner --owner=0 --group=0 -cf - . | docker import \
	  --change 'ENV PATH=/bin' --change 'WORKDIR /' --change 'ENTRYPOINT ["/bin/skiff"]' --change 'CMD ["--help"]' \
	  --message "skiff $$(git rev-parse --short=12 HEAD 2>/dev/null)" - $(IMAGE) >/dev/null; \
	echo "image $(IMAGE): skiff $$(git rev-parse --short=12 HEAD 2>/dev/null) and busybox"

.PHONY: test-cluster
test-cluster: image ## Container tests: three nodes of IMAGE on a private Docker network (kill, partition, rolling restart); about 2 minutes.
	SKIFF_CLUSTER_IMAGE=$(IMAGE) $(GO) test -count=1 -timeout 15m -v ./cluster/containertest/

CHAOS_TIME ?= 90s
CHAOS_NODES ?= 3
CHAOS_GO_TIMEOUT ?= 30m

.PHONY: test-chaos
test-chaos: image ## Chaos suite: CHAOS_NODES (3) nodes of IMAGE, a workload for CHAOS_TIME (90s) under a seeded nemesis, then the invariants; SKIFF_CHAOS_SEED=N replays.
	SKIFF_CLUSTER_IMAGE=$(IMAGE) SKIFF_CHAOS_TIME=$(CHAOS_TIME) SKIFF_CHAOS_NODES=$(CHAOS_NODES) $(GO) test -count=1 -timeout $(CHAOS_GO_TIMEOUT) -v -run TestChaos_Suite ./cluster/chaostest/

.PHONY: chaos
chaos: ## The long chaos run: test-chaos with a 10-minute workload unless CHAOS_TIME is given (make chaos CHAOS_TIME=20m).
	$(MAKE) test-chaos CHAOS_TIME=$(if $(filter command line environment,$(origin CHAOS_TIME)),$(CHAOS_TIME),10m) CHAOS_GO_TIMEOUT=90m

S3_PKGS ?= ./store/blob/... ./cmd/skiff/

.PHONY: seaweedfs
seaweedfs: ## Build SeaweedFS (weed) from the Go module proxy into ~/.cache/skiff-tools (once per version).
	tools/seaweedfs/build.sh

.PHONY: test-s3
test-s3: seaweedfs ## Run the S3 tests against a SeaweedFS server started on loopback (SKIFF_S3_TEST).
	tools/seaweedfs/s3-test.sh $(GO) test -race -count=1 -timeout 20m -run 'S3' $(S3_PKGS)

.PHONY: check
check: ## go vet, gofmt and the import rules.
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 -run 'TestImports' ./scheduler/

BENCH_WORKLOADS ?= fanout-10000 parallelfor-10000 chain-1000 lattice-100x10 cached-10000 proc-chain-1000 proc-fanout-1000
BENCH_PEERS     ?= all
BENCH_RUNS      ?= 3
BENCH_FLAGS     ?= --peer-timeout 3m --reopen

.PHONY: bench
bench: build ## skiff bench with peers, interleaved, --runs BENCH_RUNS, and --reopen (durable); writes bench/results.json.
	$(BIN) bench --peers $(BENCH_PEERS) --runs $(BENCH_RUNS) --save bench/results.json $(BENCH_FLAGS) $(BENCH_WORKLOADS)

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
