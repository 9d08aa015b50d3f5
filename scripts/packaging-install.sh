#!/bin/sh
# Installs manifold into $DESTDIR$PREFIX (make install, and make deb's staging tree)
# from build/dist (make bundle: the single executable, which embeds its Node.js
# runtime), the units, the man pages (built here from docs/*.md with go-md2man) and
# the examples. No maintainer actions: see packaging/README.md for what to run afterwards.
#
# Environment (defaults in brackets):
#   DESTDIR              staging root []
#   PREFIX               [/usr/local]
#   BINDIR               [$PREFIX/bin]
#   PKGLIBDIR            the executable, koffi, BPF object, VERSION [$PREFIX/lib/manifold]
#   SYSTEMDUNITDIR       [$PREFIX/lib/systemd/system]
#   SYSTEMDGENERATORDIR  [$PREFIX/lib/systemd/system-generators]
#   SYSUSERSDIR          [$PREFIX/lib/sysusers.d]
#   MANDIR               [$PREFIX/share/man]
#   DOCDIR               [$PREFIX/share/doc/manifold]
#   DATADIR              Prometheus rules, Grafana dashboard [$PREFIX/share/manifold]
#   SYSCONFDIR           /etc/manifold goes there (what manifold reads) [/etc]
#   BASHCOMPDIR          bash completion [$PREFIX/share/bash-completion/completions]
#   ZSHCOMPDIR           zsh completion [$PREFIX/share/zsh/vendor-completions]
#   DIST                 the bundle [build/dist]
set -eu
cd "$(dirname "$0")/.."

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
PKGLIBDIR=${PKGLIBDIR:-$PREFIX/lib/manifold}
SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-$PREFIX/lib/systemd/system}
SYSTEMDGENERATORDIR=${SYSTEMDGENERATORDIR:-$PREFIX/lib/systemd/system-generators}
SYSUSERSDIR=${SYSUSERSDIR:-$PREFIX/lib/sysusers.d}
MANDIR=${MANDIR:-$PREFIX/share/man}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/manifold}
DATADIR=${DATADIR:-$PREFIX/share/manifold}
SYSCONFDIR=${SYSCONFDIR:-/etc}
BASHCOMPDIR=${BASHCOMPDIR:-$PREFIX/share/bash-completion/completions}
ZSHCOMPDIR=${ZSHCOMPDIR:-$PREFIX/share/zsh/vendor-completions}
DIST=${DIST:-build/dist}

for v in PREFIX BINDIR PKGLIBDIR SYSTEMDUNITDIR SYSTEMDGENERATORDIR SYSUSERSDIR MANDIR DOCDIR DATADIR SYSCONFDIR BASHCOMPDIR ZSHCOMPDIR; do
  eval "val=\$$v"
  case $val in
    /*) ;;
    *) echo "packaging-install: $v must be an absolute path, got '$val'" >&2; exit 1 ;;
  esac
  case $val in
    *[!A-Za-z0-9/._+-]*) echo "packaging-install: $v='$val': only letters, digits and /._+- are supported" >&2; exit 1 ;;
  esac
done
for f in manifold manifold.bpf.o discovery.bpf.o VERSION node_modules/koffi/package.json; do
  if [ ! -e "$DIST/$f" ]; then
    echo "packaging-install: $DIST/$f is missing: run 'make bundle' first" >&2
    exit 1
  fi
done
version=$(cat "$DIST/VERSION")
D=$DESTDIR

# relpath FROM_DIR TO: TO relative to FROM_DIR (symlinks within /usr are relative).
relpath() { realpath -m --relative-to="$1" "$2"; }

# The program: the executable, the bundles loaded on use, koffi, BPF object, VERSION.
install -d "$D$BINDIR" "$D$PKGLIBDIR/lib" "$D$SYSTEMDUNITDIR" "$D$SYSTEMDGENERATORDIR" "$D$SYSUSERSDIR" \
  "$D$MANDIR/man1" "$D$MANDIR/man5" "$D$DOCDIR/examples"
install -m 0755 "$DIST/manifold" "$D$PKGLIBDIR/manifold"
for f in manifold.bpf.o discovery.bpf.o VERSION; do
  install -m 0644 "$DIST/$f" "$D$PKGLIBDIR/$f"
done
rm -f "$D$PKGLIBDIR"/lib/*.cjs
for f in "$DIST"/lib/*.cjs; do install -m 0644 "$f" "$D$PKGLIBDIR/lib/"; done
rm -rf "$D$PKGLIBDIR/node_modules"
(cd "$DIST" && find node_modules -type d) | while read -r d; do install -d -m 0755 "$D$PKGLIBDIR/$d"; done
(cd "$DIST" && find node_modules -type f) | while read -r f; do install -m 0644 "$DIST/$f" "$D$PKGLIBDIR/$f"; done

# The command and the generator are the executable under two names (symlinks: no launcher,
# the pid stays the one systemd started, so socket activation's LISTEN_PID matches).
ln -sfn manifold "$D$PKGLIBDIR/manifold-generator"
ln -sfn "$(relpath "$BINDIR" "$PKGLIBDIR/manifold")" "$D$BINDIR/manifold"
rm -f "$D$SYSTEMDGENERATORDIR/manifold-generator"
if [ "$BINDIR" = /usr/bin ]; then
  ln -s "$(relpath "$SYSTEMDGENERATORDIR" "$PKGLIBDIR/manifold-generator")" "$D$SYSTEMDGENERATORDIR/manifold-generator"
else
  # The generator writes "ExecStartPost=+/usr/bin/manifold ..." unless told otherwise.
  sed -e "s|@PKGLIBDIR@|$PKGLIBDIR|g" -e "s|@ENV@|MANIFOLD_BIN=$BINDIR/manifold |g" packaging/manifold-generator.in \
    > "$D$SYSTEMDGENERATORDIR/manifold-generator.tmp"
  chmod 0755 "$D$SYSTEMDGENERATORDIR/manifold-generator.tmp"
  mv "$D$SYSTEMDGENERATORDIR/manifold-generator.tmp" "$D$SYSTEMDGENERATORDIR/manifold-generator"
fi

# Units (their ExecStart= name /usr/bin/manifold), sysusers.d.
for u in manifold.service manifold-register@.service manifold-metrics.socket manifold-metrics.service manifold-discovery.service; do
  sed -e "s|/usr/bin/manifold|$BINDIR/manifold|g" -e "s|/usr/share/doc/manifold|$DOCDIR|g" "units/$u" > "$D$SYSTEMDUNITDIR/$u"
  chmod 0644 "$D$SYSTEMDUNITDIR/$u"
done
install -m 0644 units/manifold.sysusers "$D$SYSUSERSDIR/manifold.conf"

# Man pages.
mantmp=$(mktemp -d)
trap 'rm -rf "$mantmp"' EXIT
./scripts/packaging-man.sh docs/manifold.1.md "$mantmp/manifold.1" "$version"
./scripts/packaging-man.sh docs/manifold.conf.5.md "$mantmp/manifold.conf.5" "$version"
gzip -9n -c "$mantmp/manifold.1" > "$D$MANDIR/man1/manifold.1.gz"
gzip -9n -c "$mantmp/manifold.conf.5" > "$D$MANDIR/man5/manifold.conf.5.gz"
chmod 0644 "$D$MANDIR/man1/manifold.1.gz" "$D$MANDIR/man5/manifold.conf.5.gz"

# Documentation and examples.
install -m 0644 README.md "$D$DOCDIR/README.md"
install -m 0644 docs/metrics.md "$D$DOCDIR/metrics.md"
install -m 0644 docs/journal.md "$D$DOCDIR/journal.md"
install -m 0644 docs/discovery.md "$D$DOCDIR/discovery.md"
install -m 0644 docs/systemd.md "$D$DOCDIR/systemd.md"
install -m 0644 units/README.md "$D$DOCDIR/units.md"
for f in packaging/examples/*; do install -m 0644 "$f" "$D$DOCDIR/examples/"; done

# The configuration directory, with no configuration: a commented example (not *.conf, so not read).
install -d -m 0755 "$D$SYSCONFDIR/manifold"
install -m 0644 packaging/manifold.conf.example "$D$SYSCONFDIR/manifold/example.conf.example"

# Monitoring: Prometheus alerting rules (with their promtool unit tests) and a Grafana dashboard.
install -d "$D$DATADIR/prometheus" "$D$DATADIR/grafana"
install -m 0644 packaging/prometheus/manifold.rules.yml packaging/prometheus/manifold.rules.test.yml "$D$DATADIR/prometheus/"
install -m 0644 packaging/grafana/manifold.json "$D$DATADIR/grafana/manifold.json"

# Shell completion, generated by the executable itself (the same on every machine).
install -d "$D$BASHCOMPDIR" "$D$ZSHCOMPDIR"
"$DIST/manifold" completion bash > "$D$BASHCOMPDIR/manifold.tmp"
"$DIST/manifold" completion zsh > "$D$ZSHCOMPDIR/_manifold.tmp"
chmod 0644 "$D$BASHCOMPDIR/manifold.tmp" "$D$ZSHCOMPDIR/_manifold.tmp"
mv "$D$BASHCOMPDIR/manifold.tmp" "$D$BASHCOMPDIR/manifold"
mv "$D$ZSHCOMPDIR/_manifold.tmp" "$D$ZSHCOMPDIR/_manifold"

echo "packaging-install: manifold $version installed into ${DESTDIR:-/}${DESTDIR:+ }(prefix $PREFIX)"
