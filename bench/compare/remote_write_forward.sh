#!/usr/bin/env bash
# Remote write out, side by side in one run (issue 16): samples forwarded per
# second per core by metrics-server against Prometheus 2.42 forwarding the
# same series to the same receiver.
#
#   bench/compare/remote_write_forward.sh
#   AGENTS=3500 DURATION=20 ROUNDS=2 bench/compare/remote_write_forward.sh
#
# The series: AGENTS agents of metrics-loadgen, 29 metrics each with their
# own instance label (AGENTS x 29 series, names and labels fixed by
# --run-id so both rows have the very same series), one sample per series
# per second.
# - metrics-server row: the loadgen pushes into a metrics-server (in-memory
#   storage, history in memory, --remote-write-url to the sink) paced at 1
#   request/s per agent; forwarded = metrics_server_remote_write_sent_samples_total.
# - Prometheus row: a metrics-server holding the same series (filled once,
#   no remote write) is scraped every 1 s by Prometheus 2.42 (honor_labels),
#   which forwards with its default queue_config; forwarded =
#   prometheus_remote_storage_samples_total.
# Each sender's CPU (utime+stime from /proc) is read over the same window
# after a warm-up, with remote write (rw) and, as a baseline, under the same
# feed without it (base). Two figures per sender: forwarded samples per CPU
# second of the whole process (its ingest included: HTTP + JSON + storage +
# history for the server, scrape + parse + TSDB + WAL for Prometheus, which
# take the samples in very differently), and per CPU second of forwarding
# alone (the difference between rw and base).
#
# FEED=remote_write gives both senders the very same input instead: one
# vmagent 1.79 scrapes the source (a metrics-server holding the series,
# filled once) every second and remote-writes each scrape into the sender
# under test (metrics-server's POST /api/v1/write; Prometheus 2.42 with
# --web.enable-remote-write-receiver), which forwards to the sink. Then the
# per-core figure of the whole process compares like with like: the same
# protocol in, the same protocol out, the same samples. The base rows take
# the same feed without remote write out.
#
# The receiver is a tiny sink, nginx answering 204 to POST /api/v1/write (it
# reads and drops the body), so that it is never the bottleneck.
#
# Queue memory: the server's RSS and metrics_server_remote_write_queue_samples
# are sampled every second; then the sink is stopped for OUTAGE seconds with
# the load running (the queue fills to --remote-write-queue and stays there,
# the rest is caught up from the history after the sink comes back), and the
# RSS and the queue are sampled again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SERVER:-$root/build/release/apps/metrics-server/metrics-server}
lg=${LOADGEN:-$root/build/release/apps/metrics-loadgen/metrics-loadgen}
prom=${PROMETHEUS:-/usr/bin/prometheus}
nginx_bin=${NGINX:-/usr/sbin/nginx}
AGENTS=${AGENTS:-3500}
DURATION=${DURATION:-20}   # measured seconds per row
WARMUP=${WARMUP:-8}
ROUNDS=${ROUNDS:-2}
OUTAGE=${OUTAGE:-8}
FEED=${FEED:-push}         # push (the agents' own pushes) or remote_write (vmagent)
vmagent_bin=${VMAGENT:-/usr/bin/vmagent}
QUEUE=${QUEUE:-100000}     # --remote-write-queue (the default)
BASE=${BASE_PORT:-18600}
tick=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/rw-forward-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

sink_port=$BASE
src_port=$((BASE + 1))
srv_port=$((BASE + 2))
prom_port=$((BASE + 3))
vma_port=$((BASE + 4))

start_sink() {
  mkdir -p "$work/nginx/tmp"
  cat > "$work/nginx/nginx.conf" <<EOF
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body; proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fcgi; uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  client_max_body_size 64m;
  server {
    listen 127.0.0.1:$sink_port;
    location /api/v1/write { return 204; }
  }
}
EOF
  "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
  sink_pid=$!
  pids+=("$sink_pid")
  for _ in $(seq 100); do curl -s -o /dev/null -X POST "http://127.0.0.1:$sink_port/api/v1/write" && return; sleep 0.05; done
  echo "sink did not start" >&2; exit 1
}
stop_sink() { kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; }

cpu_s() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# metric value from a /metrics answer (sum over its series)
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF} END {printf "%.0f\n", s}'; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# $1: rw (remote write to the sink) or base (the same load, no remote write)
row_server() {
  local rw=()
  [[ $1 == rw ]] && rw=(--remote-write-url "http://127.0.0.1:$sink_port/api/v1/write" --remote-write-queue "$QUEUE")
  "$bin" -a "127.0.0.1:$srv_port" -f "" --history-dir "" --log-level warn "${rw[@]}" &
  local pid=$!
  pids+=("$pid")
  wait_http "http://127.0.0.1:$srv_port/ping"
  "$lg" -a "127.0.0.1:$srv_port" -n "$AGENTS" -r 1 -d $((WARMUP + DURATION + 2))s --run-id bench_ --no-verify \
    >/dev/null 2>&1 &
  local lgpid=$!
  sleep "$WARMUP"
  local c0 s0 c1 s1 rss_max=0 q_max=0
  c0=$(cpu_s "$pid"); s0=$(metric "$srv_port" metrics_server_remote_write_sent_samples_total)
  for _ in $(seq "$DURATION"); do
    sleep 1
    local r q
    r=$(rss_kib "$pid"); q=$(metric "$srv_port" metrics_server_remote_write_queue_samples)
    (( r > rss_max )) && rss_max=$r
    (( q > q_max )) && q_max=$q
  done
  c1=$(cpu_s "$pid"); s1=$(metric "$srv_port" metrics_server_remote_write_sent_samples_total)
  wait "$lgpid" || true
  kill -TERM "$pid"; wait "$pid" || true
  awk -v s=$((s1 - s0)) -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v r="$rss_max" -v q="$q_max" -v m="$1" \
    'BEGIN {printf "metrics-server  %-4s forwarded %8.0f samples/s  cpu %.3f cores", m, s/d, (c1-c0)/d; if (s > 0) printf "  %9.0f samples/s per core", s/(c1-c0); printf "  rss max %d KiB  queue max %d samples\n", r, q}'
  echo "server $1 $(awk -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v s=$((s1 - s0)) 'BEGIN {print (c1-c0)/d, s/d}')" >> "$work/rows"
}

# $1: rw (forwarding to the sink) or base (the same scrapes, no remote_write)
row_prometheus() {
  # The source: the same series, filled once, scraped every second.
  "$bin" -a "127.0.0.1:$src_port" -f "" --history-dir "" --no-history --series-ttl 0 --log-level warn &
  local src=$!
  pids+=("$src")
  wait_http "http://127.0.0.1:$src_port/ping"
  "$lg" -a "127.0.0.1:$src_port" -n "$AGENTS" --requests "$AGENTS" -d 30s --run-id bench_ --no-verify >/dev/null 2>&1
  mkdir -p "$work/prom"
  rm -rf "$work/prom/data"
  cat > "$work/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: source
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$src_port']
EOF
  if [[ $1 == rw ]]; then
    printf 'remote_write:\n  - url: http://127.0.0.1:%s/api/v1/write\n' "$sink_port" >> "$work/prom/prometheus.yml"
  fi
  "$prom" --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$work/prom/log" &
  local pid=$!
  pids+=("$pid")
  wait_http "http://127.0.0.1:$prom_port/-/ready"
  sleep "$WARMUP"
  local c0 s0 c1 s1 scraped
  c0=$(cpu_s "$pid"); s0=$(metric "$prom_port" prometheus_remote_storage_samples_total)
  sleep "$DURATION"
  c1=$(cpu_s "$pid"); s1=$(metric "$prom_port" prometheus_remote_storage_samples_total)
  scraped=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query?query=scrape_samples_scraped" | grep -o '"[0-9]*"\]' | tr -dc 0-9)
  kill -TERM "$pid"; wait "$pid" || true
  kill -TERM "$src"; wait "$src" || true
  awk -v s=$((s1 - s0)) -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v n="$scraped" -v m="$1" \
    'BEGIN {printf "prometheus 2.42 %-4s forwarded %8.0f samples/s  cpu %.3f cores", m, s/d, (c1-c0)/d; if (s > 0) printf "  %9.0f samples/s per core", s/(c1-c0); printf "  (%d samples per scrape)\n", n}'
  echo "prometheus $1 $(awk -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v s=$((s1 - s0)) 'BEGIN {print (c1-c0)/d, s/d}')" >> "$work/rows"
}

# FEED=remote_write: the source, filled once, for every row.
start_source() {
  "$bin" -a "127.0.0.1:$src_port" -f "" --history-dir "" --no-history --series-ttl 0 --log-level warn &
  source_pid=$!
  pids+=("$source_pid")
  wait_http "http://127.0.0.1:$src_port/ping"
  "$lg" -a "127.0.0.1:$src_port" -n "$AGENTS" --requests "$AGENTS" -d 30s --run-id bench_ --no-verify >/dev/null 2>&1
}
# vmagent scraping the source every second into $1 (a remote-write URL).
start_feed() {
  rm -rf "$work/vma"
  mkdir -p "$work/vma"
  cat > "$work/vma/scrape.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: source
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$src_port']
EOF
  "$vmagent_bin" -promscrape.config="$work/vma/scrape.yml" -remoteWrite.url="$1" \
    -remoteWrite.tmpDataPath="$work/vma/data" -httpListenAddr="127.0.0.1:$vma_port" \
    -loggerLevel=ERROR >"$work/vma/log" 2>&1 &
  feed_pid=$!
  pids+=("$feed_pid")
  wait_http "http://127.0.0.1:$vma_port/metrics"
}
stop_feed() { kill -TERM "$feed_pid"; wait "$feed_pid" 2>/dev/null || true; }

# $1: server or prometheus; $2: rw (forwarding to the sink) or base
row_fed() {
  local pid sent_metric port
  if [[ $1 == server ]]; then
    local rw=()
    [[ $2 == rw ]] && rw=(--remote-write-url "http://127.0.0.1:$sink_port/api/v1/write" --remote-write-queue "$QUEUE")
    "$bin" -a "127.0.0.1:$srv_port" -f "" --history-dir "" --log-level warn "${rw[@]}" &
    pid=$!
    port=$srv_port
    sent_metric=metrics_server_remote_write_sent_samples_total
    wait_http "http://127.0.0.1:$port/ping"
  else
    mkdir -p "$work/prom"
    rm -rf "$work/prom/data"
    printf 'global:\n  scrape_interval: 1m\n' > "$work/prom/prometheus.yml"
    if [[ $2 == rw ]]; then
      printf 'remote_write:\n  - url: http://127.0.0.1:%s/api/v1/write\n' "$sink_port" >> "$work/prom/prometheus.yml"
    fi
    "$prom" --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
      --web.listen-address="127.0.0.1:$prom_port" --web.enable-remote-write-receiver \
      --log.level=warn 2>"$work/prom/log" &
    pid=$!
    port=$prom_port
    sent_metric=prometheus_remote_storage_samples_total
    wait_http "http://127.0.0.1:$port/-/ready"
  fi
  pids+=("$pid")
  start_feed "http://127.0.0.1:$port/api/v1/write"
  sleep "$WARMUP"
  local c0 s0 c1 s1 f0 f1
  c0=$(cpu_s "$pid"); s0=$(metric "$port" "$sent_metric"); f0=$(metric "$vma_port" vmagent_remotewrite_rows_pushed_after_relabel_total)
  sleep "$DURATION"
  c1=$(cpu_s "$pid"); s1=$(metric "$port" "$sent_metric"); f1=$(metric "$vma_port" vmagent_remotewrite_rows_pushed_after_relabel_total)
  stop_feed
  kill -TERM "$pid"; wait "$pid" || true
  local name
  name=$([[ $1 == server ]] && echo metrics-server || echo "prometheus 2.42")
  awk -v s=$((s1 - s0)) -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v m="$2" -v n="$name" -v f=$((f1 - f0)) \
    'BEGIN {printf "%-15s %-4s fed %8.0f samples/s  forwarded %8.0f samples/s  cpu %.3f cores", n, m, f/d, s/d, (c1-c0)/d; if (s > 0) printf "  %9.0f samples/s per core", s/(c1-c0); printf "\n"}'
  echo "$1 $2 $(awk -v c0="$c0" -v c1="$c1" -v d="$DURATION" -v s=$((s1 - s0)) 'BEGIN {print (c1-c0)/d, s/d}')" >> "$work/rows"
}

# The queue under an outage of the sink: bounded by --remote-write-queue.
outage() {
  "$bin" -a "127.0.0.1:$srv_port" -f "" --history-dir "" --log-level warn \
    --remote-write-url "http://127.0.0.1:$sink_port/api/v1/write" --remote-write-queue "$QUEUE" &
  local pid=$!
  pids+=("$pid")
  wait_http "http://127.0.0.1:$srv_port/ping"
  "$lg" -a "127.0.0.1:$srv_port" -n "$AGENTS" -r 1 -d $((WARMUP + 2 * OUTAGE + 10))s --run-id bench_ --no-verify \
    >/dev/null 2>&1 &
  local lgpid=$!
  sleep "$WARMUP"
  echo "outage: rss before $(rss_kib "$pid") KiB, queue $(metric "$srv_port" metrics_server_remote_write_queue_samples)"
  stop_sink
  local rss_max=0 q_max=0
  for _ in $(seq "$OUTAGE"); do
    sleep 1
    local r q
    r=$(rss_kib "$pid"); q=$(metric "$srv_port" metrics_server_remote_write_queue_samples)
    (( r > rss_max )) && rss_max=$r
    (( q > q_max )) && q_max=$q
  done
  echo "outage: sink down ${OUTAGE}s: rss max $rss_max KiB, queue max $q_max samples (limit $QUEUE), dropped to catch-up $(metric "$srv_port" metrics_server_remote_write_dropped_samples_total)"
  start_sink
  sleep $((OUTAGE + 4))
  echo "outage: after: rss $(rss_kib "$pid") KiB, queue $(metric "$srv_port" metrics_server_remote_write_queue_samples), catch-up sent $(metric "$srv_port" metrics_server_remote_write_catchup_samples_total), failed $(metric "$srv_port" metrics_server_remote_write_failed_samples_total)"
  wait "$lgpid" || true
  kill -TERM "$pid"; wait "$pid" || true
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), agents $AGENTS x 29 series, $DURATION s per row"
echo "# server: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $("$prom" --version 2>&1 | head -1)"
echo "# feed: $FEED"
start_sink
[[ $FEED == remote_write ]] && start_source
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  if [[ $FEED == remote_write ]]; then
    if (( round % 2 == 1 )); then
      row_fed server rw; row_fed server base; row_fed prometheus rw; row_fed prometheus base
    else
      row_fed prometheus base; row_fed prometheus rw; row_fed server base; row_fed server rw
    fi
  elif (( round % 2 == 1 )); then
    row_server rw; row_server base; row_prometheus rw; row_prometheus base
  else
    row_prometheus base; row_prometheus rw; row_server base; row_server rw
  fi
done
# Per core of the whole process (ingest included), and of the forwarding
# alone: forwarded samples / (CPU with remote write - CPU without), means
# over the rounds.
awk '{cpu[$1" "$2] += $3; n[$1" "$2]++; if ($2 == "rw") fw[$1] += $4}
  END {
    for (k in cpu) cpu[k] /= n[k]
    for (s in fw) {
      f = fw[s] / n[s" rw"]
      printf "summary %-10s forwarded %.0f samples/s: %.0f per core of the process, %.0f per core of forwarding (cpu %.3f with, %.3f without)\n", s, f, f / cpu[s" rw"], f / (cpu[s" rw"] - cpu[s" base"]), cpu[s" rw"], cpu[s" base"]
    }
  }' "$work/rows"
if [[ $FEED == remote_write ]]; then kill -TERM "$source_pid"; wait "$source_pid" 2>/dev/null || true; fi
outage
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
