#!/usr/bin/env bash
# CLI-to-server delay on SQLite: a token family ended by `sesame sessions
# revoke` (another process) until the running server refuses its access token.
#
#   scripts/cli-revoke-delay.sh [path/to/sesame] [iterations]
#
# Prints, per iteration, the time from the CLI's return to the first 401 and
# how many requests were still answered 200 before it (0: the very first
# request after the CLI returned was refused). Needs curl; uses port 18931.
set -euo pipefail
bin=${1:-sesame}; n=${2:-20}
dir=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" serve --addr 127.0.0.1:18931 --data-dir "$dir" --hash-concurrency 2 2>"$dir/log" & pid=$!
until curl -fs http://127.0.0.1:18931/healthz >/dev/null; do sleep 0.1; done
for i in $(seq "$n"); do
  email="cli$i@x.test"
  curl -fs -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"a long password\"}" http://127.0.0.1:18931/v1/users >/dev/null
  at=$(curl -fs -d "grant_type=password&username=$email&password=a+long+password" http://127.0.0.1:18931/v1/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" http://127.0.0.1:18931/v1/userinfo)" = 200 ]
  "$bin" sessions revoke --email "$email" --data-dir "$dir" >/dev/null
  t0=$(date +%s%N); polls=0
  while [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" http://127.0.0.1:18931/v1/userinfo)" = 200 ]; do polls=$((polls+1)); done
  echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms $polls"
done
