# manifold — build, test, demo, bench, package.
# `make test` and `make demo` set up everything they need on a fresh Debian 12 machine (as root).

SHELL := /bin/bash
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu \
	-fdebug-prefix-map=$(CURDIR)=. -fno-ident
APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 libsystemd0 systemd util-linux netcat-openbsd

.PHONY: all deps build bpf test demo bench clean check-bpf-reproducible

all: build

deps:
	@./scripts/deps.sh $(APT_PACKAGES)

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: node_modules/.package-lock.json
	npx tsc -p tsconfig.json

# The compiled object is committed; `make bpf` rebuilds it byte for byte with Debian 12's clang 14.
bpf: bpf/manifold.bpf.o

bpf/manifold.bpf.o: bpf/manifold.bpf.c
	cd bpf && $(CLANG) $(BPF_CFLAGS) -c manifold.bpf.c -o manifold.bpf.o.tmp
	$(LLVM_STRIP) -g bpf/manifold.bpf.o.tmp
	mv bpf/manifold.bpf.o.tmp $@

check-bpf-reproducible:
	@cp bpf/manifold.bpf.o /tmp/manifold.bpf.o.committed
	@touch bpf/manifold.bpf.c && $(MAKE) --no-print-directory bpf
	@cmp bpf/manifold.bpf.o /tmp/manifold.bpf.o.committed && echo "bpf/manifold.bpf.o is reproducible"

test: deps build
	node test/run.mjs

demo: deps build
	./scripts/demo.sh

bench: deps build
	node build/bench/run.js

clean:
	rm -rf build
