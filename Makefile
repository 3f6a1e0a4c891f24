# configd — the commands the README promises.
GO ?= go

.PHONY: run test build image image-micro bench bench-go bench-load fmt screenshots

## run: start configd on its embedded defaults (SQLite in ./data, HTTP on 127.0.0.1:7700)
run:
	$(GO) run ./cmd/configd --data-dir ./data

## test: install what the tests need (Go modules, Consul, etcd, etcdctl 3.4 and 3.7.3, consul-template, confd, kube-apiserver, Chromium, Prometheus), then vet, run every test with the race detector (the benchmark harnesses' module, bench/, and the deployment assets' module, deploy/, and the config-source adapters' modules, adapters/kratos, adapters/koanf and adapters/gomicro, included), and fuzz each fuzz target (a fixed number of inputs, about 10s each)
test: test-deps
	$(GO) mod download
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd deploy && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd adapters/kratos && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd adapters/koanf && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd adapters/gomicro && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	bash scripts/fuzz.sh

## fuzz: run each fuzz target for its default number of inputs, or FUZZTIME (1m, 500x; seeds in each package's testdata/fuzz)
fuzz:
	bash scripts/fuzz.sh

## test-deps: install the real servers and browser the tests use (see scripts/install-test-deps.sh)
test-deps:
	bash scripts/install-test-deps.sh

## screenshots: refresh the web UI's screenshots in docs/screenshots/ (runs its browser tests in headless Chromium; make test-deps installs it)
screenshots:
	CONFIGD_SCREENSHOTS=1 $(GO) test -count=1 -run '^TestBrowser' ./web

## build: build configd, configctl and micro into ./bin
build:
	$(GO) build -o bin/ ./cmd/configd ./cmd/configctl ./cmd/micro

## image: build configd's container image (FROM scratch, non-root, OCI labels) with buildah into bin/configd-image.oci.tar (scripts/build-image.sh; docs/deploy.md)
image:
	bash scripts/build-image.sh configd bin/configd-image.oci.tar

## image-micro: build the gateway's image (micro api on 8080, micro web on 8082) into bin/micro-image.oci.tar
image-micro:
	bash scripts/build-image.sh micro bin/micro-image.oci.tar

## bench-go: the Go benchmarks of the store and the HTTP API
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./audit/... ./server/httpapi

## bench-load: a load run from a separate process against a fresh configd (see BENCHMARKS.md)
bench-load: build
	./bench/load.sh

fmt:
	gofmt -w .

## proto: regenerate api/configdpb from configd.proto (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	cd api/configdpb && $(GO) generate

## bench-fanout: one write reaching 1,000 and 10,000 SDK watchers, each on its own connection
bench-fanout: build
	cd bench && $(GO) run ./cmd/fanout --configd ../bin/configd --clients 1000,10000 --rounds 5

## bench: configd side by side with a real etcd and Consul on this machine (issue 8); rewrites BENCHMARKS.md's side-by-side section and docs/bench/*.png (under 15 minutes; needs make test-deps)
bench:
	cd bench && $(GO) run ./cmd/compare $(BENCH_FLAGS)
