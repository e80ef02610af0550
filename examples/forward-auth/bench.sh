#!/usr/bin/env bash
# Measures forward authentication with wrk, each figure beside a baseline
# measured in the same run (docs/BENCHMARKS.md, "Forward authentication"):
#
#   1. GET /v1/auth-request with a valid cookie, on the memory session store
#      and on the embedded default (SQLite), against a bare net/http handler
#      (`sesame lab bare`) answering the same empty 200;
#   2. nginx with Sesame's auth_request (examples/forward-auth/nginx-app.conf)
#      in front of an upstream, against the same nginx proxying the same
#      upstream with no auth.
#
# Two more targets show the ceilings no auth server could pass: bare_hdrs, a
# bare handler answering with the headers Sesame's allowed answer carries
# (identity and security headers), and nginx_auth_bare, the same nginx
# configuration with a bare handler as its auth server (a subrequest that
# costs the auth server nothing).
#
# Rounds alternate between the targets; the medians of the throughput and of
# the server processes' CPU time per request (from /proc) are printed, and
# their ratios (CPU ratio = baseline CPU/req / measured CPU/req: what the
# throughput ratio would be with the servers alone on their cores). Needs Go,
# wrk, nginx and curl. Usage: examples/forward-auth/bench.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-5}
conns=32
for p in wrk nginx curl; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "$p is needed" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ -n "${BENCH_KEEP:-}" ] && trap - EXIT

go build -o "$tmp/sesame" ./cmd/sesame

# start NAME CMD...: runs CMD in the background, waits for its "addr=" log
# line and sets ADDR.
start() {
  local name=$1; shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  PID=$!
  for _ in $(seq 100); do
    ADDR=$(grep -o 'addr=[0-9.:]*' "$tmp/$name.log" | head -1 | cut -d= -f2 || true)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1
}

: >"$tmp/empty"
start bare "$tmp/sesame" lab bare -body "$tmp/empty"; bare=$ADDR; pid_bare=$PID
start memory "$tmp/sesame" serve --addr 127.0.0.1:0 --data-dir "$tmp/mem" --session-store memory; mem=$ADDR; pid_mem=$PID
start sqlite "$tmp/sesame" serve --addr 127.0.0.1:0 --data-dir "$tmp/sql"; sql=$ADDR; pid_sql=$PID

# signin ADDR: registers a user and prints the session cookie's value.
signin() {
  local body='{"email":"bench@example.test","password":"correct horse battery"}'
  curl -fs "http://$1/v1/users" -H 'Content-Type: application/json' -d "$body" >/dev/null
  curl -fsi "http://$1/v1/session" -H 'Content-Type: application/json' -d "$body" |
    tr -d '\r' | sed -n 's/^Set-Cookie: __Host-sesame=\([^;]*\);.*/\1/p'
}
cmem=$(signin "$mem")
csql=$(signin "$sql")

# The headers of Sesame's allowed answer (less those net/http writes itself)
# for the bare handler that sends them too.
curl -fs -o /dev/null -D - "http://$mem/v1/auth-request" -H "X-Original-Method: GET" \
  -H "X-Original-URL: http://app.example.test/docs/" -H "Cookie: __Host-sesame=$cmem" |
  tr -d '\r' | grep -v -i -E '^(HTTP/|date:|content-length:|content-type:|$)' >"$tmp/headers"
start bare_hdrs "$tmp/sesame" lab bare -body "$tmp/empty" -headers "$tmp/headers"; bare_hdrs=$ADDR; pid_bare_hdrs=$PID

# The upstream behind nginx: another bare handler.
start upstream "$tmp/sesame" lab bare -body "$tmp/empty"; upstream=$ADDR; pid_up=$PID
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port); pc=$(port)
sed -e "s/127.0.0.1:9091/$mem/; s/127.0.0.1:8081/$upstream/; s/listen 80;/listen 127.0.0.1:$pa;/" \
  examples/forward-auth/nginx-app.conf >"$tmp/app.conf"
# The same configuration with the bare handler as the auth server.
sed -e "s/127.0.0.1:9091/$bare/; s/127.0.0.1:8081/$upstream/; s/listen 80;/listen 127.0.0.1:$pc;/; s/upstream sesame/upstream sesame_bare/; s#http://sesame/#http://sesame_bare/#; s/upstream app /upstream app_b /; s#http://app;#http://app_b;#; s/\$sesame_cookie\([_0-9]*\)/\$bare_cookie\1/g" \
  examples/forward-auth/nginx-app.conf >"$tmp/app-bare.conf"
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client; proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
    include $tmp/app.conf;
    include $tmp/app-bare.conf;
    server {
        listen 127.0.0.1:$pb;
        server_name app.example.test;
        location / {
            proxy_set_header Host \$host;
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_pass http://app;
        }
    }
}
EOF
"$nginx_bin" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
pids+=($!)
pid_nginx=$!
sleep 1

# ticks PID...: CPU time (user + system, clock ticks) the processes used.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
hz=$(getconf CLK_TCK)

# run "PIDS" URL HEADERS...: one wrk run; prints requests/s and the server
# processes' CPU microseconds per request.
run() {
  local procs=$1 url=$2; shift 2
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  local before out n rps after
  before=$(ticks $procs)
  out=$(wrk -t1 -c"$conns" -d"${secs}s" "${args[@]}" "$url")
  after=$(ticks $procs)
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  if echo "$out" | grep -q 'Non-2xx'; then echo "$url: non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}
hdrs=("X-Original-Method: GET" "X-Original-URL: http://app.example.test/docs/")
declare -A rate cpu
for r in $(seq "$rounds"); do
  for k in bare bare_hdrs memory sqlite nginx_plain nginx_auth_bare nginx_auth; do
    case $k in
      bare) res=$(run "$pid_bare" "http://$bare/v1/auth-request" "${hdrs[@]}" "Cookie: __Host-sesame=$cmem") ;;
      bare_hdrs) res=$(run "$pid_bare_hdrs" "http://$bare_hdrs/v1/auth-request" "${hdrs[@]}" "Cookie: __Host-sesame=$cmem") ;;
      nginx_auth_bare) res=$(run "$pid_nginx $pid_up $pid_bare" "http://127.0.0.1:$pc/docs/" "Host: app.example.test" "Cookie: __Host-sesame=$cmem") ;;
      memory) res=$(run "$pid_mem" "http://$mem/v1/auth-request" "${hdrs[@]}" "Cookie: __Host-sesame=$cmem") ;;
      sqlite) res=$(run "$pid_sql" "http://$sql/v1/auth-request" "${hdrs[@]}" "Cookie: __Host-sesame=$csql") ;;
      nginx_plain) res=$(run "$pid_nginx $pid_up" "http://127.0.0.1:$pb/docs/" "Host: app.example.test" "Cookie: __Host-sesame=$cmem") ;;
      nginx_auth) res=$(run "$pid_nginx $pid_up $pid_mem" "http://127.0.0.1:$pa/docs/" "Host: app.example.test" "Cookie: __Host-sesame=$cmem") ;;
    esac
    rate[$k]+="${res% *} "
    cpu[$k]+="${res#* } "
  done
  echo "round $r of $rounds done" >&2
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "wrk -t1 -c$conns -d${secs}s, $rounds rounds alternating; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-15s %12s %14s   %s\n' target "req/s median" "CPU µs/req" "(all req/s; all CPU µs/req)"
for k in bare bare_hdrs memory sqlite nginx_plain nginx_auth_bare nginx_auth; do
  printf '  %-15s %12s %14s   (%s; %s)\n' "$k" "$(echo "${rate[$k]}" | median)" "$(echo "${cpu[$k]}" | median)" "${rate[$k]}" "${cpu[$k]}"
done
m() { echo "${1}" | median; }
awk -v b="$(m "${rate[bare]}")" -v m="$(m "${rate[memory]}")" -v s="$(m "${rate[sqlite]}")" \
    -v np="$(m "${rate[nginx_plain]}")" -v na="$(m "${rate[nginx_auth]}")" \
    -v cb="$(m "${cpu[bare]}")" -v cm="$(m "${cpu[memory]}")" -v cs="$(m "${cpu[sqlite]}")" \
    -v cnp="$(m "${cpu[nginx_plain]}")" -v cna="$(m "${cpu[nginx_auth]}")" \
    -v bh="$(m "${rate[bare_hdrs]}")" -v cbh="$(m "${cpu[bare_hdrs]}")" \
    -v nab="$(m "${rate[nginx_auth_bare]}")" -v cnab="$(m "${cpu[nginx_auth_bare]}")" 'BEGIN {
  printf "auth-request, memory / bare:  ratio %.2f, CPU ratio %.2f (goal >= 0.8)\n", m/b, cb/cm
  printf "auth-request, sqlite / bare:  ratio %.2f, CPU ratio %.2f (goal >= 0.7)\n", s/b, cb/cs
  printf "nginx+auth_request / nginx:   ratio %.2f, CPU ratio %.2f (goal >= 0.7)\n", na/np, cnp/cna
  printf "ceilings: bare with the same headers / bare: ratio %.2f, CPU ratio %.2f; nginx+auth_request to a bare handler / nginx: ratio %.2f, CPU ratio %.2f\n", bh/b, cb/cbh, nab/np, cnp/cnab
}'
