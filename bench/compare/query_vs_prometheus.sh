#!/usr/bin/env bash
# Queries side by side with Prometheus 2.42 on the same samples (issue 14).
# metrics-loadgen pushes AGENTS labelled agents (BATCH series each) at one
# request per second for INGEST seconds into a memory-only metrics-server,
# which remote-writes every sample (--remote-write-url) to a Prometheus
# started with --web.enable-remote-write-receiver and no scrape jobs: both
# hold the same samples at the same timestamps. Then, against each in turn:
# an instant sum by (job) (rate()) over every counter, a range query of one
# series over the whole ingest window at a 1 s step, a range topk over
# every gauge of one name, each REPEAT times (median wall time of curl), and
# CONC concurrent dashboard-style queries while a second load generator
# ingests; peak RSS (VmHWM) of each process after its queries.
#   bench/compare/query_vs_prometheus.sh            # AGENTS=1000 BATCH=29 INGEST=120
# MEMORY=1: no queries; the memory each holds for the same samples (issue
# 13): resident memory after ingest less the idle one (before ingest), per
# sample and per series, metrics-server's accounted history bytes and
# Prometheus's head and data folder. RATE (1) requests per second per agent;
# SERVER_ARGS: more metrics-server flags (e.g. --no-history, to see what the
# history's share of its memory is).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SERVER:-$root/build/release/apps/metrics-server/metrics-server}
lg=${LOADGEN:-$root/build/release/apps/metrics-loadgen/metrics-loadgen}
prom=${PROMETHEUS:-/usr/bin/prometheus}
AGENTS=${AGENTS:-1000}
BATCH=${BATCH:-29}
INGEST=${INGEST:-120}
REPEAT=${REPEAT:-5}
CONC=${CONC:-100}
MEMORY=${MEMORY:-0}
RATE=${RATE:-1}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
pport=$(free_port); mport=$(free_port)
printf 'global:\n  scrape_interval: 1h\n' > "$tmp/prometheus.yml"
$prom --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address=127.0.0.1:$pport --web.enable-remote-write-receiver \
  --log.level=warn >"$tmp/prom.log" 2>&1 & ppid=$!; pids+=($ppid)
# shellcheck disable=SC2086 # SERVER_ARGS are words on purpose
$bin -a 127.0.0.1:$mport -f "" --history-dir "" --log-level warn ${SERVER_ARGS:-} \
  --remote-write-url http://127.0.0.1:$pport/api/v1/write >"$tmp/server.log" 2>&1 & mpid=$!; pids+=($mpid)
for _ in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:$pport/-/ready && curl -sf -o /dev/null http://127.0.0.1:$mport/ping && break
  sleep 0.2
done
rss_kb() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
idle_m=$(rss_kb $mpid); idle_p=$(rss_kb $ppid)
t0=$(date +%s)
$lg -a 127.0.0.1:$mport -n "$AGENTS" -b "$BATCH" -r "$RATE" -d "${INGEST}s" --run-id qb_ --no-verify >/dev/null 2>&1
t1=$(date +%s)
sleep 15  # remote write out drains
hwm() { awk '/VmHWM/ {print $2 " kB"}' /proc/$1/status; }
rss() { awk '/VmRSS/ {print $2 " kB"}' /proc/$1/status; }
if [[ $MEMORY == 1 ]]; then
  value() {  # port promql -> the first result's value
    curl -sG "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$t1" |
      python3 -c 'import json,sys; j=json.load(sys.stdin); r=j.get("data", {}).get("result"); print(r[0]["value"][1] if r else "none: " + json.dumps(j)[:300])'
  }
  metric() {  # port name -> its value in /metrics (first line)
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; exit}'
  }
  rm=$(rss_kb $mpid); rp=$(rss_kb $ppid)  # before any query (a query's buffers are not the data's)
  echo "# memory: $AGENTS agents x $BATCH series, ${INGEST}s at $RATE req/s each, $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "| | metrics-server | Prometheus |"
  echo "|---|---:|---:|"
  sm=$(value $mport 'count({__name__=~"qb_.+"})'); sp=$(value $pport 'count({__name__=~"qb_.+"})')
  held() {  # port -> samples held of every qb_ series (count_over_time drops the name: one name at a time)
    curl -s "http://127.0.0.1:$1/api/v1/label/__name__/values" |
      python3 -c 'import json,sys; print("\n".join(x for x in json.load(sys.stdin)["data"] if x.startswith("qb_")))' |
      while read -r n; do value "$1" "sum(count_over_time(${n}[1d]))"; done | awk '{s += $1} END {print s}'
  }
  nm=$(held $mport); np=$(held $pport)
  echo "| series | $sm | $sp |"
  echo "| samples held | $nm | $np |"
  echo "| RSS idle, kB | $idle_m | $idle_p |"
  echo "| RSS after ingest, kB | $rm | $rp |"
  awk -v a=$((rm - idle_m)) -v b=$((rp - idle_p)) -v na="$nm" -v nb="$np" -v sa="$sm" -v sb="$sp" 'BEGIN {
    printf "| RSS growth, bytes per sample | %.2f | %.2f |\n", a * 1024 / na, b * 1024 / nb
    printf "| RSS growth, bytes per series | %.0f | %.0f |\n", a * 1024 / sa, b * 1024 / sb }'
  echo "| history bytes (accounted) / payload | $(metric $mport metrics_server_history_bytes) / $(metric $mport metrics_server_history_payload_bytes) | |"
  echo "| head chunk bytes, Go heap in use | | $(metric $pport prometheus_tsdb_head_chunks_storage_size_bytes), $(metric $pport go_memstats_heap_inuse_bytes) |"
  echo "| data folder (WAL, chunks), bytes | (memory only) | $(du -sb "$tmp/prom" | cut -f1) |"
  exit 0
fi
q() {  # port path -> "seconds" (median of REPEAT)
  for _ in $(seq "$REPEAT"); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1$2"; done |
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
enc() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
counter=$(curl -s "http://127.0.0.1:$mport/api/v1/label/__name__/values" | python3 -c 'import json,sys; n=json.load(sys.stdin)["data"]; print([x for x in n if x.startswith("qb_") and x.endswith("c")][0])')
gauge=$(curl -s "http://127.0.0.1:$mport/api/v1/label/__name__/values" | python3 -c 'import json,sys; n=json.load(sys.stdin)["data"]; print([x for x in n if x.startswith("qb_") and x.endswith("g1")][0])')
start=$((t0 + 5)); end=$((t1 - 1))
instant="/api/v1/query?query=$(enc "sum by (job) (rate(${counter}[1m]))")&time=$end"
one="/api/v1/query_range?query=$(enc "rate(${counter}{instance=\"loadgen-1\"}[1m])")&start=$start&end=$end&step=1"
topk="/api/v1/query_range?query=$(enc "topk(10, rate(${gauge}[1m]))")&start=$start&end=$end&step=1"
count="/api/v1/query?query=$(enc "count({__name__=~\"qb_.+\"})")&time=$end"
samples="/api/v1/query?query=$(enc "sum(count_over_time(${counter}[1h]))")&time=$end"
check="/api/v1/query?query=$(enc "sum(rate(${counter}[1m]))")&time=$end"
echo "# query_vs_prometheus: $AGENTS agents x $BATCH series, ${INGEST}s at 1 req/s, $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for who in metrics-server:$mport:$mpid prometheus:$pport:$ppid; do
  IFS=: read -r name port pid <<<"$who"
  echo "## $name (RSS before queries $(rss "$pid"))"
  echo "series $(curl -s "http://127.0.0.1:$port$count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')" \
       "samples of $counter $(curl -s "http://127.0.0.1:$port$samples" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')"
  echo "sum(rate($counter[1m])) at the end: $(curl -s "http://127.0.0.1:$port$check" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')"
  echo "instant sum by (job) (rate) over every counter: $(q "$port" "$instant") s"
  echo "range, one series, whole window at 1 s: $(q "$port" "$one") s"
  echo "range topk(10) over every $gauge at 1 s: $(q "$port" "$topk") s"
  # CONC concurrent dashboard queries while ingest runs (into metrics-server,
  # which forwards to Prometheus, so both ingest).
  $lg -a 127.0.0.1:$mport -n 200 -b "$BATCH" -r 1 -d 20s --run-id qc_ --no-verify >/dev/null 2>&1 & lgpid=$!
  sleep 2
  s0=$(date +%s.%N)
  for i in $(seq "$CONC"); do echo "$instant"; echo "$one"; done |
    xargs -P "$CONC" -I{} curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port{}" > "$tmp/conc.txt"
  s1=$(date +%s.%N)
  wait $lgpid || true
  echo "$((2 * CONC)) queries, $CONC at once, during ingest: $(awk -v s="$s0" -v e="$s1" 'BEGIN {printf "%.2f s wall", e - s}'),"\
       "$(sort -k2 -n "$tmp/conc.txt" | awk '$1 == 200 {ok++} {t[NR]=$2} END {printf "%d ok, p50 %.3f s, p99 %.3f s", ok, t[int(NR*0.5)+1], t[int(NR*0.99)]}')"
  echo "peak RSS (VmHWM) $(hwm "$pid")"
done
