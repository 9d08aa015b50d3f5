#!/bin/sh
# Prints manifold's version, valid as a Debian upstream version:
#
#   at a tag vX.Y.Z              X.Y.Z   (a '-' in the tag becomes '~': v1.0-rc1 -> 1.0~rc1)
#   N commits after tag vX.Y.Z   X.Y.Z+gitN.HASH    (sorts after X.Y.Z)
#   no tag yet                   P~gitN.HASH        (P = package.json "version"; N = commits
#                                                   in HEAD; sorts before the release P)
#   uncommitted changes          ... +dirty appended (e.g. 0.1.0~git17.66518d6+dirty)
#   not a git checkout           P
#
# $MANIFOLD_VERSION, when set, is printed instead (release builds from a tarball).
# N grows along a branch, so successive snapshot packages upgrade each other.
set -eu
cd "$(dirname "$0")/.."

check() {
  # A Debian upstream version: starts with a digit; letters, digits, . + ~ only
  # (no '-', the package revision is added separately).
  case "$1" in
    [0-9]*) ;;
    *) echo "packaging-version: '$1' does not start with a digit" >&2; exit 1 ;;
  esac
  if [ -n "$(printf '%s' "$1" | tr -d 'A-Za-z0-9.+~')" ]; then
    echo "packaging-version: '$1' is not a valid Debian upstream version (only A-Za-z0-9.+~)" >&2
    exit 1
  fi
  printf '%s\n' "$1"
}

if [ -n "${MANIFOLD_VERSION:-}" ]; then
  check "$MANIFOLD_VERSION"
  exit 0
fi

base=$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n 1)

if ! git rev-parse --git-dir >/dev/null 2>&1 || ! git rev-parse --verify -q HEAD >/dev/null; then
  check "$base"
  exit 0
fi

dirty=
if ! git diff --quiet HEAD -- 2>/dev/null; then dirty=+dirty; fi
hash=$(git rev-parse --short=7 HEAD)

if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
  # vX.Y.Z-N-gHASH
  tag=${desc%-*-g*}
  rest=${desc#"$tag"-}
  n=${rest%%-*}
  tag=$(printf '%s' "${tag#v}" | tr - '~')   # v1.0.0-rc1 -> 1.0.0~rc1
  if [ "$n" = 0 ]; then
    check "$tag$dirty"
  else
    check "$tag+git$n.$hash$dirty"
  fi
else
  n=$(git rev-list --count HEAD)
  check "$base~git$n.$hash$dirty"
fi
