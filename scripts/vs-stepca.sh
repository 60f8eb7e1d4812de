#!/usr/bin/env bash
# scripts/vs-stepca.sh [ROUNDS] [COUNT] [ACME_COUNT]  (defaults 4, 10000 and 2000)
#
# pkid against step-ca v0.30.2 on this machine, in the same minutes: issue
# #8 states its targets beside step-ca's figures from a reference machine,
# and a shared machine's speed moves by ±10–25% from hour to hour, so the
# fair comparison alternates the two servers (step-ca, pkid, step-ca,
# pkid...), each on a fresh store, both under the same CA (one `pkid init`)
# for 32 keep-alive clients of `pkid bench`:
#   sign     pkid:    --mode sign,        POST /v1/sign/default, bbolt, every certificate fsynced
#            step-ca: --mode stepca-sign, POST /1.0/sign with a JWK provisioner's one-time
#                     token, badger (its default, SyncWrites on), as in issue #8's reference
#   ACME     --mode acme for both: complete orders for the IP 127.0.0.1 with real
#            http-01 validation. step-ca validates on port 80 only, so this pair
#            runs only as root with port 80 free.
# Writes docs/VS-STEPCA.md. step-ca is built once (CGO off, no PKCS#11) into
# $PKID_BENCH_DIR (default /tmp/pkid-bench) from the Go module proxy.
# Ports: PKID_VS_PORT (default 19643) and the three after it.
set -euo pipefail
ROUNDS=${1:-4} COUNT=${2:-10000} ACME_COUNT=${3:-2000}
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
sed -i "s/^  http01_port: 80$/  http01_port: $((P+3))/" "$T/ca/pkid.yaml"
ACME=1
if [ "$(id -u)" != 0 ] || (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null; then
  ACME=; echo "not root, or port 80 taken: step-ca's http-01 cannot be served; sign only" >&2
fi
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
  "authority": {"provisioners": [$("$BIN" bench --stepca-provisioner --stepca-key "$T/provisioner.pem"),
    {"type": "ACME", "name": "acme", "challenges": ["http-01"]}]},
  "tls": {"minVersion": 1.2, "maxVersion": 1.3, "renegotiation": false}
}
EOF

# wait_up URL: until the server answers over TLS.
wait_up() { until curl -fsS --cacert "$ROOT" "$1" >/dev/null 2>&1; do sleep 0.05; done; }
# measure LOG LABEL WARMUP N BENCH...: a warm-up, then the measured run,
# its row named LABEL; a run with errors stops the script with the
# server's log, as its figures would mean nothing.
measure() {
  local log=$1 label=$2 warm=$3 n=$4 row; shift 4
  "$@" -n "$warm" >/dev/null
  row=$("$@" -n "$n" | sed "s/^| [a-z-]* |/| $label |/")
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
  B="$BIN bench --ca-url $STEPCA_URL --root $ROOT --server-pid $SERVER -c 32 --format md"
  measure "$T/stepca.log" stepca-sign 2000 "$COUNT" $B --mode stepca-sign --stepca-key "$T/provisioner.pem"
  [ -z "$ACME" ] || measure "$T/stepca.log" stepca-acme 300 "$ACME_COUNT" $B --mode acme --role acme --http01-listen 127.0.0.1:80
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=

  rm -f "$T/ca/db/pkid.db"
  TOKEN=$("$BIN" token create --config "$T/ca/pkid.yaml" --role default --name vs 2>/dev/null)
  "$BIN" serve --config "$T/ca/pkid.yaml" 2>"$T/serve.log" & SERVER=$!
  wait_up "$PKID_URL/healthz"
  B="$BIN bench --ca-url $PKID_URL --root $ROOT --token $TOKEN --server-pid $SERVER -c 32 --format md"
  measure "$T/serve.log" sign 2000 "$COUNT" $B --mode sign
  [ -z "$ACME" ] || measure "$T/serve.log" acme 300 "$ACME_COUNT" $B --mode acme --http01-listen "127.0.0.1:$((P+3))"
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
done

# Per round and mode: step-ca's server CPU per operation over pkid's, and
# pkid's throughput over step-ca's.
RATIOS=$(awk -F'|' '{m = $2; gsub(/ /, "", m); gsub(/[ \/s]/, "", $6)}
  m ~ /^stepca-/ { k = substr(m, 8); cpu[k] = $11; tput[k] = $6; next }
  { if (m == "sign") round++; printf "| %d | %s | %.2f× | %.2f× |\n", round, m, cpu[m]/$11, $6/tput[m] }' "$ROWS")
{
  echo "# pkid and step-ca side by side"
  echo
  echo "Written by \`scripts/vs-stepca.sh $ROUNDS $COUNT\` on $(date -u +%Y-%m-%d), $(scripts/machine.sh), $(go env GOVERSION), step-ca $STEPCA_VERSION."
  echo "Both servers sign P-256 CSRs under the same CA (P-256 intermediate) for \`pkid bench\` at 32 clients, alternating, each on a fresh store;"
  echo "client and servers share the machine's cores. sign: pkid \`--mode sign\` (bbolt, every certificate fsynced before the answer);"
  echo "step-ca \`--mode stepca-sign\` (/1.0/sign with a JWK provisioner's one-time token, badger with its default synchronous writes)."
  echo "acme: \`--mode acme\` against both, complete orders for the IP 127.0.0.1 with real http-01 validation (step-ca's on port 80)."
  echo "Issue #8's reference machine: step-ca ~1,650–1,850 certs/s at ~0.8 ms of server CPU per certificate, and ~220–250 ACME orders/s;"
  echo "pkid's targets: sign ≥ 4,000/s at ≤ 0.3 ms, ACME ≥ 600 orders/s."
  echo
  echo "| mode | key | clients | ops | throughput | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/op | of crypto bound | errors | server CPU in kernel |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$ROWS"
  echo
  echo "| round | mode | step-ca CPU / pkid CPU per operation | pkid throughput / step-ca |"
  echo "|---|---|---|---|"
  echo "$RATIOS"
} >docs/VS-STEPCA.md
echo "$RATIOS"
echo "wrote docs/VS-STEPCA.md" >&2
