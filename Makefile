# manifold — build, test, demo, bench, package.
# `make test` and `make demo` set up everything they need on a fresh Debian 12 machine (as root).

SHELL := /bin/bash
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu \
	-fdebug-prefix-map=$(CURDIR)=. -fno-ident
APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 libsystemd0 systemd util-linux netcat-openbsd gcc libc6-dev time zsh
# make deb (and the package test): man pages from Markdown, dpkg-deb/dpkg-shlibdeps, lintian.
APT_PACKAGES += go-md2man dpkg-dev lintian
# Real-systemd tests on stock Debian roots (test/systemd/debian-root.ts): bookworm and trixie.
APT_PACKAGES += debootstrap
# promtool (Debian ships it only in the prometheus package) checks and unit-tests the shipped
# alerting rules and the dashboard's expressions (test/integration/prometheus-assets.test.ts).
APT_PACKAGES += prometheus

.PHONY: all deps build bpf test demo bench clean

all: build

deps:
	@./scripts/deps.sh $(APT_PACKAGES)

# build/: the tsc module tree (tests import it) and build/sea/manifold, the single executable
# bin/manifold and generators/manifold-generator link to (Node with a start-up snapshot of the CLI
# and the generator; scripts/build-sea.mjs, packaging/README.md "The single executable").
build:
	@[ -d node_modules ] || ./scripts/deps.sh
	./node_modules/.bin/tsc -p tsconfig.json
	node scripts/build-sea.mjs

# The compiled objects are committed; `make bpf` rebuilds them byte for byte with Debian 12's clang 14:
# the per-namespace dispatcher and the host-wide listener discovery programs (docs/discovery.md).
# Always recompiles (the objects are committed, so timestamps say nothing).
BPF_OBJECTS := manifold discovery
bpf:
	set -e; for o in $(BPF_OBJECTS); do \
		(cd bpf && $(CLANG) $(BPF_CFLAGS) -c $$o.bpf.c -o $$o.bpf.o.tmp); \
		$(LLVM_STRIP) -g bpf/$$o.bpf.o.tmp; \
		mv bpf/$$o.bpf.o.tmp bpf/$$o.bpf.o; \
	done

# Unit and integration files run in two lanes (each file in its own namespaces); real-systemd files one at a time.
TEST_JOBS ?= 2

test: deps build
	node test/run.mjs --jobs $(TEST_JOBS)

demo: deps build
	./scripts/demo.sh

bench: deps build
	node build/bench/run.js

clean:
	rm -rf build

# Removes the Debian roots the systemd tests build on demand (rebuilt on next use). Not while tests run.
.PHONY: clean-test-roots
clean-test-roots:
	rm -rf --one-file-system /var/cache/manifold-test/roots

# Packaging (packaging/README.md). `bundle`: what the package ships in build/dist (the
# single executable, which embeds its Node.js runtime, koffi, the BPF object, VERSION);
# `deb`: packaging/out/manifold_<version>_<arch>.deb; `install`: the same tree as the
# package under $(DESTDIR)$(PREFIX), without maintainer scripts.
PREFIX ?= /usr/local
DESTDIR ?=
DEB_OUTDIR ?= packaging/out

.PHONY: bundle deb install

bundle:
	@[ -d node_modules ] || ./scripts/deps.sh
	node scripts/packaging-bundle.mjs

deb: bundle
	DEB_OUTDIR=$(DEB_OUTDIR) ./scripts/packaging-deb.sh

install: bundle
	DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) ./scripts/packaging-install.sh
