#!/usr/bin/env bash
# scripts/vs-stepca.sh [ROUNDS] [COUNT]  (defaults 4 and 10000)
#
# pkid against step-ca v0.30.2 on this machine, in the same minutes: issue
# #8 states its sign targets beside step-ca's figures from a reference
# machine, and a shared machine's speed moves by ±10–25% from hour to hour,
# so the fair comparison alternates the two servers (step-ca, pkid, step-ca,
# pkid...), each on a fresh store, both signing P-256 CSRs under the same CA
# (one `pkid init`) for 32 keep-alive clients of `pkid bench`:
#   pkid:    --mode sign,        POST /v1/sign/default, bbolt, every certificate fsynced
#   step-ca: --mode stepca-sign, POST /1.0/sign with a JWK provisioner's one-time
#            token, badger (its default, SyncWrites on), as in issue #8's reference
# Writes docs/VS-STEPCA.md. step-ca is built once (CGO off, no PKCS#11) into
# $PKID_BENCH_DIR (default /tmp/pkid-bench) from the Go module proxy.
# Ports: PKID_VS_PORT (default 19643) and the two after it.
set -euo pipefail
ROUNDS=${1:-4} COUNT=${2:-10000}
cd "$(dirname "$0")/.."
make -s build
BIN=$PWD/bin/pkid
STEPCA_VERSION=v0.30.2
CACHE=${PKID_BENCH_DIR:-/tmp/pkid-bench}
STEPCA=$CACHE/step-ca-$STEPCA_VERSION
if [ ! -x "$STEPCA" ]; then
  mkdir -p "$CACHE/gobin-$STEPCA_VERSION"
  echo "building step-ca $STEPCA_VERSION (once)..." >&2
  CGO_ENABLED=0 GOBIN="$CACHE/gobin-$STEPCA_VERSION" go install -tags nopkcs11 "github.com/smallstep/certificates/cmd/step-ca@$STEPCA_VERSION"
  mv "$CACHE/gobin-$STEPCA_VERSION/step-ca" "$STEPCA"
fi
P=${PKID_VS_PORT:-19643}
PKID_URL=https://127.0.0.1:$P STEPCA_URL=https://127.0.0.1:$((P+2))
T=$(mktemp -d /tmp/pkid-vs-stepca.XXXXXX)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

"$BIN" init --dir "$T/ca" --listen "127.0.0.1:$P" --http-listen "127.0.0.1:$((P+1))" >/dev/null 2>&1
ROOT=$T/ca/certs/root.crt
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/provisioner.pem" 2>/dev/null
cat >"$T/ca.json" <<EOF
{
  "root": "$ROOT",
  "crt": "$T/ca/certs/intermediate.crt",
  "key": "$T/ca/secrets/intermediate.key",
  "address": "127.0.0.1:$((P+2))",
  "dnsNames": ["127.0.0.1"],
  "logger": {"format": "text"},
  "db": {"type": "badgerv2", "dataSource": "$T/stepca-db"},
  "authority": {"provisioners": [$("$BIN" bench --stepca-provisioner --stepca-key "$T/provisioner.pem")]},
  "tls": {"minVersion": 1.2, "maxVersion": 1.3, "renegotiation": false}
}
EOF

# wait_up URL: until the server answers over TLS.
wait_up() { until curl -fsS --cacert "$ROOT" "$1" >/dev/null 2>&1; do sleep 0.05; done; }
# measure LOG BENCH...: a warm-up, then the measured run; a run with errors
# stops the script with the server's log, as its figures would mean nothing.
measure() {
  local log=$1 row; shift
  "$@" -n 2000 >/dev/null
  row=$("$@" -n "$COUNT")
  echo "$row" | tee -a "$ROWS"
  if [ "$(echo "$row" | awk -F'|' '{gsub(/ /, "", $13); print $13}')" != 0 ]; then
    echo "errors in this run; the server's log ends:" >&2; tail -5 "$log" >&2; exit 1
  fi
}
ROWS=$T/rows.md
: >"$ROWS"
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$T/stepca-db"
  "$STEPCA" "$T/ca.json" --password-file "$T/ca/secrets/password" >"$T/stepca.log" 2>&1 & SERVER=$!
  wait_up "$STEPCA_URL/health"
  measure "$T/stepca.log" "$BIN" bench --ca-url "$STEPCA_URL" --root "$ROOT" --server-pid $SERVER --mode stepca-sign --stepca-key "$T/provisioner.pem" -c 32 --format md
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=

  rm -f "$T/ca/db/pkid.db"
  TOKEN=$("$BIN" token create --config "$T/ca/pkid.yaml" --role default --name vs 2>/dev/null)
  "$BIN" serve --config "$T/ca/pkid.yaml" 2>"$T/serve.log" & SERVER=$!
  wait_up "$PKID_URL/healthz"
  measure "$T/serve.log" "$BIN" bench --ca-url "$PKID_URL" --root "$ROOT" --token "$TOKEN" --server-pid $SERVER --mode sign -c 32 --format md
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
done

# Per round: step-ca's server CPU per certificate over pkid's, and pkid's
# throughput over step-ca's.
RATIOS=$(awk -F'|' '{gsub(/[ \/s]/, "", $6); cpu[NR] = $11; tput[NR] = $6}
  NR % 2 == 0 { printf "| %d | %.2f× | %.2f× |\n", NR/2, cpu[NR-1]/cpu[NR], tput[NR]/tput[NR-1] }' "$ROWS")
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
{
  echo "# pkid and step-ca side by side"
  echo
  echo "Written by \`scripts/vs-stepca.sh $ROUNDS $COUNT\` on $(date -u +%Y-%m-%d), $(nproc) cores, $CPU_MODEL, $(go env GOVERSION), step-ca $STEPCA_VERSION."
  echo "Both servers sign P-256 CSRs under the same CA (P-256 intermediate) for \`pkid bench\` at 32 clients, alternating, each on a fresh store;"
  echo "client and servers share the machine's cores. pkid: \`--mode sign\` (bbolt, every certificate fsynced before the answer)."
  echo "step-ca: \`--mode stepca-sign\` (/1.0/sign with a JWK provisioner's one-time token, badger with its default synchronous writes)."
  echo "Issue #8's reference machine: step-ca ~1,650–1,850 certs/s and ~0.8 ms of server CPU per certificate; pkid's targets ≥ 4,000/s and ≤ 0.3 ms."
  echo
  echo "| mode | key | clients | ops | throughput | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/op | of crypto bound | errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$ROWS"
  echo
  echo "| round | step-ca CPU / pkid CPU per certificate | pkid throughput / step-ca |"
  echo "|---|---|---|"
  echo "$RATIOS"
} >docs/VS-STEPCA.md
echo "$RATIOS"
echo "wrote docs/VS-STEPCA.md" >&2
