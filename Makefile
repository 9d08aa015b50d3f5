# manifold — build, test, demo, bench, package.
# `make test` and `make demo` set up everything they need on a fresh Debian 12 machine (as root).

SHELL := /bin/bash
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu \
	-fdebug-prefix-map=$(CURDIR)=. -fno-ident
APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 libsystemd0 systemd util-linux netcat-openbsd gcc libc6-dev time

.PHONY: all deps build bpf test demo bench clean

all: build

deps:
	@./scripts/deps.sh $(APT_PACKAGES)

build:
	@[ -d node_modules ] || ./scripts/deps.sh
	./node_modules/.bin/tsc -p tsconfig.json

# The compiled object is committed; `make bpf` rebuilds it byte for byte with Debian 12's clang 14.
# Always recompiles (the object is committed, so timestamps say nothing).
bpf:
	cd bpf && $(CLANG) $(BPF_CFLAGS) -c manifold.bpf.c -o manifold.bpf.o.tmp
	$(LLVM_STRIP) -g bpf/manifold.bpf.o.tmp
	mv bpf/manifold.bpf.o.tmp bpf/manifold.bpf.o

test: deps build
	node test/run.mjs

demo: deps build
	./scripts/demo.sh

bench: deps build
	node build/bench/run.js

clean:
	rm -rf build
