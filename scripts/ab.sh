#!/usr/bin/env bash
# scripts/ab.sh OLD NEW ROUNDS [pkid bench flags...]
#
# Compares two pkid server binaries the only way this kind of shared machine
# allows: alternating runs (OLD, NEW, OLD, NEW...) on one throwaway CA, each
# on a fresh empty store, so that the machine's slow and fast phases fall on
# both. Prints each run's throughput, server CPU per operation and p99, then
# the averages. The client is always bin/pkid (PKID_AB_CLIENT to change it).
#
#   make build && cp bin/pkid /tmp/pkid.old   # before the change
#   make build                                # after it
#   scripts/ab.sh /tmp/pkid.old bin/pkid 6 --mode sign -c 32 -n 20000
#   PKID_AB_ENV_A=GOGC=400 PKID_AB_ENV_B=GOGC=1000 scripts/ab.sh bin/pkid bin/pkid 4 --mode sign -c 32 -n 20000
#
# ACME needs the bench's http-01 and DNS listeners, on the ports the CA's
# config names: --http01-listen 127.0.0.1:$((PORT+2)) --dns-listen 127.0.0.1:$((PORT+3)).
# Ports: PKID_AB_PORT (default 19443) and the three after it.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,17p "$0" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2") N=$3
shift 3
cd "$(dirname "$0")/.."
CLIENT=${PKID_AB_CLIENT:-$PWD/bin/pkid}
P=${PKID_AB_PORT:-19443}
HTTPS=127.0.0.1:$P HTTP=127.0.0.1:$((P+1))
T=$(mktemp -d /tmp/pkid-ab.XXXXXX)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

"$B" init --dir "$T/ca" --listen "$HTTPS" --http-listen "$HTTP" >/dev/null 2>&1
sed -i "s/^  http01_port: 80$/  http01_port: $((P+2))/; s/^  resolver: \"\"$/  resolver: \"127.0.0.1:$((P+3))\"/; s/^  hosts: {}$/  hosts: {}\n  new_accounts: {accounts: 0}/" "$T/ca/pkid.yaml"
# Each acme run registers an account per client, all from 127.0.0.1, more
# than acme.new_accounts allows one address; a pkid older than that bound
# refuses the key, and has no bound to lift.
for bin in "$A" "$B"; do
  "$bin" config check --config "$T/ca/pkid.yaml" >/dev/null 2>&1 || sed -i '/^  new_accounts: /d' "$T/ca/pkid.yaml"
done
for bin in "$A" "$B"; do
  "$bin" config check --config "$T/ca/pkid.yaml" >/dev/null || { echo "$bin refuses the CA's pkid.yaml" >&2; exit 1; }
done
ROOT=$T/ca/certs/root.crt

# one BIN ENV: a fresh store, a server, one bench run; prints "tput cpu p99".
one() {
  local bin=$1 envs=$2 tok
  shift 2
  rm -f "$T/ca/db/pkid.db"
  tok=$("$bin" token create --config "$T/ca/pkid.yaml" --role default --admin --name ab 2>/dev/null)
  env $envs "$bin" serve --config "$T/ca/pkid.yaml" 2>"$T/serve.log" & SERVER=$!
  until curl -fsS --cacert "$ROOT" "https://$HTTPS/healthz" >/dev/null 2>&1; do sleep 0.02; done
  "$CLIENT" bench --ca-url "https://$HTTPS" --root "$ROOT" --token "$tok" --server-pid $SERVER --format md "$@" |
    awk -F'|' '/^\| [a-z]/ {gsub(/[ \/s]/, "", $6); gsub(/ /, "", $9); gsub(/ /, "", $11); print $6, $11, $9}'
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
}

for i in $(seq "$N"); do
  echo "A $(one "$A" "${PKID_AB_ENV_A:-}" "$@")"
  echo "B $(one "$B" "${PKID_AB_ENV_B:-}" "$@")"
done | awk '{print; t[$1]+=$2; c[$1]+=$3; p[$1]+=$4; n[$1]++}
  END {split("A B", ks, " "); for (i = 1; i <= 2; i++) {k = ks[i]; printf "avg %s: %.0f/s, server CPU %.4f ms/op, p99 %.1f ms over %d runs\n", k, t[k]/n[k], c[k]/n[k], p[k]/n[k], n[k]}}'
