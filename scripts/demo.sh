#!/usr/bin/env bash
# manifold demo: steer real traffic in a throwaway network namespace.
#
# Loads the dispatcher, binds 127.0.0.0/8 port 4321 to label "foo", starts a
# listener on 127.0.0.1:9999 (nc), registers it with register-pid, sends a
# message to 127.0.0.23:4321 and shows that the listener got it. Everything
# (namespace, bpffs mount, processes) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it creates a network namespace and loads BPF)" >&2
  exit 1
fi
# Re-run in a private mount namespace so the bpffs mount vanishes with us.
if [ "${MANIFOLD_DEMO_INNER:-}" != 1 ]; then
  MANIFOLD_DEMO_INNER=1 exec unshare --mount --propagation private "$0" "$@"
fi

NS="mf-demo-$$"
BPFFS="$(mktemp -d /tmp/mf-demo-bpffs.XXXXXX)"
OUT="$(mktemp /tmp/mf-demo-out.XXXXXX)"
NC_PID=""
M() { bin/manifold --netns "/run/netns/$NS" --bpffs "$BPFFS" "$@"; }
step() { printf '\n\033[1m$ manifold %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  [ -n "$NC_PID" ] && kill "$NC_PID" 2>/dev/null && wait "$NC_PID" 2>/dev/null
  M unload >/dev/null 2>&1
  umount "$BPFFS" 2>/dev/null; rmdir "$BPFFS" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -f "$OUT"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
mount -t bpf bpf "$BPFFS"
echo "demo: network namespace $NS, bpffs $BPFFS"

step load;                              M load
step bind foo tcp 127.0.0.0/8 4321;     M bind foo tcp 127.0.0.0/8 4321

echo; echo "\$ nc -k -l 127.0.0.1 9999   (in the namespace)"
nsenter --net="/run/netns/$NS" nc -k -l 127.0.0.1 9999 >"$OUT" &
NC_PID=$!
for _ in $(seq 50); do
  nsenter --net="/run/netns/$NS" ss -Hltn 'sport = :9999' | grep -q . && break
  sleep 0.1
done

step register-pid "$NC_PID" foo tcp 127.0.0.1 9999
M register-pid "$NC_PID" foo tcp 127.0.0.1 9999

echo; echo "\$ echo hi | nc -q1 127.0.0.23 4321"
echo hi | nsenter --net="/run/netns/$NS" nc -q1 127.0.0.23 4321
sleep 0.3
echo "listener on 127.0.0.1:9999 received: $(cat "$OUT")"

step status; M status
if [ "$(cat "$OUT")" = "hi" ]; then
  printf '\n\033[1;32mdemo: traffic to 127.0.0.23:4321 was steered to the listener on 127.0.0.1:9999\033[0m\n'
else
  echo "demo: the message did not arrive" >&2
  exit 1
fi
