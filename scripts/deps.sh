#!/usr/bin/env bash
# Install what manifold's build, tests and demo need on Debian 12 (as root):
# the apt packages given as arguments (only the missing ones) and the npm
# dependencies (npm ci). Node.js >= 20 must already be installed.
set -euo pipefail

need_node_major=20
if ! command -v node >/dev/null 2>&1; then
  echo "deps: node is not installed; manifold needs Node.js >= ${need_node_major} (Debian 12's nodejs is 18)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt "$need_node_major" ]; then
  echo "deps: node $(node --version) is too old; manifold needs Node.js >= ${need_node_major}" >&2
  exit 1
fi

missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
