#!/usr/bin/env bash
# dev-run.sh BIN DIR: make a development CA in DIR on first run, then serve
# it, printing everything a newcomer needs to try it.
set -euo pipefail
BIN=$1 DIR=$2
if [ ! -f "$DIR/pkid.yaml" ]; then
  "$BIN" init --dir "$DIR" --name "pkid Dev CA" >/dev/null
  # Development tweaks: http-01 on port 5002 (not 80, which needs root) and
  # demo.internal answered as 127.0.0.1 without DNS.
  sed -i 's/^  http01_port: 80$/  http01_port: 5002/; s/^  hosts: {}$/  hosts: {demo.internal: 127.0.0.1}/' "$DIR/pkid.yaml"
fi
if [ ! -s "$DIR/secrets/dev-admin-token" ]; then
  "$BIN" token create --config "$DIR/pkid.yaml" --role default --admin --name dev-admin 2>/dev/null >"$DIR/secrets/dev-admin-token"
  chmod 600 "$DIR/secrets/dev-admin-token"
fi
TOKEN=$(cat "$DIR/secrets/dev-admin-token")
URL=$(sed -n 's/^external_url: //p' "$DIR/pkid.yaml")
ROOT="$DIR/certs/root.crt"
FP=$(openssl x509 -in "$ROOT" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
cat <<MSG

  pkid (development CA) at $URL
  root fingerprint (SHA-256): $FP
  root certificate:           $ROOT
  admin token (dev only):     $TOKEN

  # REST: a certificate and a CA-made key for demo.internal
  curl --cacert $ROOT -H "Authorization: Bearer $TOKEN" -d '{"common_name":"demo.internal","ttl":"1h"}' $URL/v1/issue/default

  # ACME with certbot (http-01 on port 5002; demo.internal maps to 127.0.0.1 in acme.hosts;
  # certbot keeps its account and certificates in $DIR/certbot, so they go with this CA)
  REQUESTS_CA_BUNDLE=$ROOT certbot certonly --standalone --http-01-port 5002 --server $URL/acme/default/directory -d demo.internal --agree-tos --register-unsafely-without-email --config-dir $DIR/certbot --work-dir $DIR/certbot --logs-dir $DIR/certbot

MSG
exec "$BIN" serve --config "$DIR/pkid.yaml"
