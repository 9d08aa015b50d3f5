#!/bin/sh
# Builds manifold_<version>-<revision>_<arch>.deb (make deb) with dpkg-deb, from
# build/dist (make bundle: the single executable, which embeds its Node.js runtime)
# and packaging/debian/*: installs the tree
# with packaging-install.sh (PREFIX=/usr), adds the Debian files (copyright,
# changelog.Debian.gz, README.Debian, maintainer scripts, md5sums, control).
#
# Environment (defaults in brackets):
#   DEB_OUTDIR       where the .deb goes [packaging/out]
#   DEB_STAGE        staging directory, emptied first [build/deb]
#   DEB_REVISION     Debian revision [1]
#   DEB_MAINTAINER   [manifold maintainers <maintainers@manifold.invalid>]
#   DIST             what make bundle assembled [build/dist]
# Prints the path of the .deb on its last line.
set -eu
cd "$(dirname "$0")/.."

DEB_OUTDIR=${DEB_OUTDIR:-packaging/out}
DEB_STAGE=${DEB_STAGE:-build/deb}
DEB_REVISION=${DEB_REVISION:-1}
DEB_MAINTAINER=${DEB_MAINTAINER:-manifold maintainers <maintainers@manifold.invalid>}
DIST=${DIST:-build/dist}
export DIST

for tool in dpkg-deb dpkg-shlibdeps; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "packaging-deb: $tool is missing (apt-get install dpkg-dev, or make deps)" >&2
    exit 1
  fi
done
if [ ! -f "$DIST/VERSION" ]; then
  echo "packaging-deb: $DIST/VERSION is missing: run 'make bundle' first" >&2
  exit 1
fi
version=$(cat "$DIST/VERSION")
deb_version=$version-$DEB_REVISION
node_version=$(sed -n 's/.*"version": *"v\{0,1\}\([^"]*\)".*/\1/p' "$DIST/node.json")
# The executable (and koffi's binary) are for this Node's architecture.
arch=$(node -p '({ x64: "amd64", arm64: "arm64", ia32: "i386", arm: "armhf", riscv64: "riscv64" })[process.arch] ?? ""')
if [ -z "$arch" ]; then
  echo "packaging-deb: no Debian architecture for Node's $(node -p process.arch)" >&2
  exit 1
fi
# Reproducible: every timestamp is the last commit's (or now, outside git).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

case $DEB_STAGE in
  ''|/) echo "packaging-deb: bad DEB_STAGE '$DEB_STAGE'" >&2; exit 1 ;;
esac
root=$DEB_STAGE/root
rm -rf "$DEB_STAGE"
mkdir -p "$root" "$DEB_OUTDIR"

umask 022
DESTDIR=$root PREFIX=/usr ./scripts/packaging-install.sh >/dev/null

doc=$root/usr/share/doc/manifold
node scripts/packaging-copyright.mjs "$DIST" > "$doc/copyright"
install -m 0644 packaging/debian/README.Debian "$doc/README.Debian"
install -d "$root/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/manifold"
date_rfc=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" -R)
sed -e "s|@DEB_VERSION@|$deb_version|g" -e "s|@VERSION@|$version|g" -e "s|@COMMIT@|$commit|g" \
    -e "s|@MAINTAINER@|$DEB_MAINTAINER|g" -e "s|@DATE@|$date_rfc|g" packaging/debian/changelog.in \
  | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"

# Shared-library dependencies of the executable (Node) and of koffi's binary (libbpf
# and libsystemd are opened with dlopen through koffi, so they are listed in control.in).
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: manifold\n\nPackage: manifold\nArchitecture: any\n' > "$shl/debian/control"
binaries="$(cd "$root" && pwd)/usr/lib/manifold/manifold $(find "$(cd "$root" && pwd)/usr" -name '*.node' -type f)"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O -e $binaries 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
  echo "packaging-deb: dpkg-shlibdeps found no dependencies for $binaries" >&2
  exit 1
fi

mkdir -p "$root/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"; done
# Files under /etc are conffiles: an upgrade keeps the administrator's changes, purge removes them.
(cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$deb_version|g" -e "s|@ARCH@|$arch|g" -e "s|@MAINTAINER@|$DEB_MAINTAINER|g" \
    -e "s|@INSTALLED_SIZE@|$size|g" -e "s|@SHLIBS_DEPENDS@|$shlibs|g" -e "s|@NODE_VERSION@|Node.js $node_version|g" \
    packaging/debian/control.in > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$DEB_OUTDIR/manifold_${deb_version}_$arch.deb
# xz -1: the executable (Node) is ~90 MB; -1 packs it in a quarter of the time of the
# default -6 for ~15% more bytes (26 MB instead of 23).
dpkg-deb --root-owner-group -Zxz -z1 --build "$root" "$deb" >/dev/null
echo "$deb"
