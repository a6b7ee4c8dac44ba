#!/usr/bin/env bash
# Side-by-side ingest benchmark (a measurement, not a test): the same load
# (CONNS kept-alive connections, each request a 29-sample batch, DURATION
# seconds per target, driven by wrk) against metrics-server in memory, with
# synchronous file storage and with PostgreSQL, against VictoriaMetrics,
# Prometheus Pushgateway, and nginx answering a constant string (the HTTP
# ceiling of this machine). Then single-metric text updates, an integrity run
# with metrics-loadgen, labelled envelopes against unlabelled arrays (both
# driven by metrics-loadgen, alternated, LABEL_ROUNDS rounds), and
# SCALE_CONNS paced connections held at once, each its own instance, verified.
#
#   bench/compare/run.sh                        # everything, markdown on stdout
#   DURATION=5 SCALE_CONNS=2000 bench/compare/run.sh
#   ONLY=nginx,vm,mem bench/compare/run.sh      # a subset (names: see RUNS below)
#   ONLY=labels LABEL_ROUNDS=3 bench/compare/run.sh   # issue 12: envelopes vs arrays
#   ONLY=scale SCALE_BATCH=30 bench/compare/run.sh    # 10,000 instances x 30 series
#   ONLY=hist LABEL_ROUNDS=3 bench/compare/run.sh     # issue 13: history dir vs memory only
#   (NO_HISTORY_SERVER=path/to/an/older/metrics-server adds rounds without history at all)
#
# Every server listens on 127.0.0.1 only, is started and stopped here, and
# works in a temporary folder that is removed at the end. Needs: wrk, curl,
# victoria-metrics, prometheus-pushgateway, nginx (Debian packages) and a
# release build (BUILD_DIR, default build/release). PostgreSQL is used when
# METRICS_TEST_PG_DSN is set, or when run as root and scripts/postgres-setup.sh
# can provide one.
set -euo pipefail
# A server's environment wins over its flags: none of the caller's settings
# may reach the servers started here.
unset ADDRESS DATABASE_DSN FILE_STORAGE_PATH STORE_INTERVAL RESTORE KEY CONFIG ALLOW_UNSIGNED \
  TLS_CERT TLS_KEY LOG_LEVEL RETENTION HISTORY_MAX_BYTES HISTORY_DIR
# Nor may the caller's LOADGEN_* settings change the generator's runs.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^LOADGEN_' || true)

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}
SERVER=${METRICS_SERVER:-$BUILD_DIR/apps/metrics-server/metrics-server}
LOADGEN=${METRICS_LOADGEN:-$BUILD_DIR/apps/metrics-loadgen/metrics-loadgen}
DURATION=${DURATION:-15}           # seconds per target
CONNS=${CONNS:-200}                # wrk connections
WRK_THREADS=${WRK_THREADS:-2}
SCALE_CONNS=${SCALE_CONNS:-10000}  # connection-scale run
SCALE_RATE=${SCALE_RATE:-0.2}      # requests/s per connection (an agent reporting every 5 s)
SCALE_DURATION=${SCALE_DURATION:-20}
SCALE_BATCH=${SCALE_BATCH:-29}     # metrics per scale agent (30: the 300,000-series memory figure)
LABEL_ROUNDS=${LABEL_ROUNDS:-2}    # labelled/unlabelled pairs, order alternated per round
LG_THREADS=${LG_THREADS:-1}        # metrics-loadgen threads in the labels rows
ONLY=${ONLY:-}
RAW_DIR=${RAW_DIR:-}               # when set, raw wrk/loadgen outputs are copied there
RUNS="nginx vm pushgw mem mem1 text file pg verify labels hist scale"
NO_HISTORY_SERVER=${NO_HISTORY_SERVER:-}  # hist: a build without history, for a third column
SERVER_EXTRA=()                           # loadgen_row: more server flags

log() { echo "bench: $*" >&2; }
want() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }

for tool in wrk curl ss; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 1; }
done
for bin in "$SERVER" "$LOADGEN"; do
  [[ -x $bin ]] || { log "missing $bin (build the release preset, or set BUILD_DIR)"; exit 1; }
done

ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/metrics-bench.XXXXXX")
PIDS=()
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
  done
  log "no free port"; exit 1
}

# start NAME CMD...: runs CMD in the background, output in $WORK/NAME.log.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_ready URL: until it answers 2xx, at most 20 s.
wait_ready() {
  for _ in $(seq 1 200); do
    kill -0 "$LAST_PID" 2>/dev/null || { log "server exited: $(tail -n5 "$WORK"/*.log)"; exit 1; }
    if curl -fs -o /dev/null --max-time 1 "$1"; then return 0; fi
    sleep 0.1
  done
  log "$1 not ready after 20 s"; exit 1
}

# Results, one entry per row.
R_NAME=() R_RPS=() R_P99=() R_ERR=() R_SAMPLES=() R_NOTE=()
VM_RPS="" NGINX_RPS=""

to_ms() {  # wrk prints 812.00us, 1.25ms, 2.01s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "%s", v }'
}

# wrk_run NAME LABEL URL SAMPLES_PER_REQUEST [LUA]
wrk_run() {
  local name=$1 label=$2 url=$3 samples=$4 lua=${5:-}
  local args=(-t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency)
  [[ -n $lua ]] && args+=(-s "$lua")
  log "$label: wrk ${args[*]} $url"
  timeout $((DURATION + 60)) wrk "${args[@]}" "$url" >"$WORK/$name.wrk" 2>&1 || true
  [[ -n ${RAW_DIR:-} ]] && cp "$WORK/$name.wrk" "$RAW_DIR/"
  local rps p99 non2xx sockerr
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/$name.wrk")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/$name.wrk")
  sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$WORK/$name.wrk")
  R_NAME+=("$label") R_RPS+=("${rps:-0}") R_P99+=("${p99:-?}")
  R_ERR+=("$(( ${non2xx:-0} + ${sockerr:-0} ))") R_SAMPLES+=("$samples") R_NOTE+=("wrk")
  log "$label: ${rps:-0} requests/s, p99 ${p99:-?} ms, errors $(( ${non2xx:-0} + ${sockerr:-0} ))"
}

# metrics_server NAME ARGS...: starts one, sets PORT and SERVER_PID.
metrics_server() {
  local name=$1; shift
  PORT=$(free_port)
  start "$name" "$SERVER" -a "127.0.0.1:$PORT" --access-log=false --log-level warn \
    --history-dir "" "$@"
  SERVER_PID=$LAST_PID
  wait_ready "http://127.0.0.1:$PORT/ping"
}

echo "# metrics benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- load: wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, 29 samples per request unless noted"
echo

if want nginx; then
  P=$(free_port)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS:-auto};
worker_rlimit_nofile 20000;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 60s;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$P;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
CONF
  start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
  wait_ready "http://127.0.0.1:$P/"
  wrk_run nginx "nginx, constant answer (HTTP ceiling)" "http://127.0.0.1:$P/" 0
  NGINX_RPS=${R_RPS[-1]}
  stop_pid "$LAST_PID"
fi

if want vm; then
  P=$(free_port)
  start vm victoria-metrics -httpListenAddr="127.0.0.1:$P" -storageDataPath="$WORK/vm" \
    -retentionPeriod=1d -loggerLevel=ERROR
  wait_ready "http://127.0.0.1:$P/health"
  wrk_run vm "VictoriaMetrics, Influx /write" "http://127.0.0.1:$P" 29 "$HERE/vm_influx.lua"
  VM_RPS=${R_RPS[-1]}
  stop_pid "$LAST_PID"
fi

if want pushgw; then
  P=$(free_port)
  start pushgw prometheus-pushgateway --web.listen-address="127.0.0.1:$P" --log.level=error
  wait_ready "http://127.0.0.1:$P/-/ready"
  wrk_run pushgw "Prometheus Pushgateway, text format" "http://127.0.0.1:$P" 29 \
    "$HERE/pushgateway.lua"
  stop_pid "$LAST_PID"
fi

if want mem; then
  metrics_server mem -f ""
  wrk_run mem "metrics-server, memory" "http://127.0.0.1:$PORT" 29 "$HERE/metrics_batch.lua"
  stop_pid "$SERVER_PID"
fi

if want mem1; then
  metrics_server mem1 -f "" --threads 1
  wrk_run mem1 "metrics-server, memory, --threads 1" "http://127.0.0.1:$PORT" 29 \
    "$HERE/metrics_batch.lua"
  stop_pid "$SERVER_PID"
fi

if want text; then
  metrics_server text -f ""
  wrk_run text "metrics-server, single-metric text updates" "http://127.0.0.1:$PORT" 1 \
    "$HERE/metrics_text.lua"
  stop_pid "$SERVER_PID"
fi

if want file; then
  metrics_server file -f "$WORK/metrics-db.json" -i 0
  wrk_run file "metrics-server, file storage -i 0 (synchronous)" "http://127.0.0.1:$PORT" 29 \
    "$HERE/metrics_batch.lua"
  stop_pid "$SERVER_PID"
fi

if want pg; then
  DSN=${METRICS_TEST_PG_DSN:-}
  if [[ -z $DSN && $(id -u) -eq 0 && -x $ROOT/scripts/postgres-setup.sh ]]; then
    DSN=$("$ROOT/scripts/postgres-setup.sh" 2>/dev/null | tail -n1) || DSN=""
  fi
  if [[ -n $DSN ]]; then
    metrics_server pg -d "$DSN"
    wrk_run pg "metrics-server, PostgreSQL" "http://127.0.0.1:$PORT" 29 "$HERE/metrics_batch.lua"
    stop_pid "$SERVER_PID"
  else
    log "no PostgreSQL DSN: skipping the PostgreSQL run"
    R_NAME+=("metrics-server, PostgreSQL") R_RPS+=("-") R_P99+=("-") R_ERR+=("-")
    R_SAMPLES+=(29) R_NOTE+=("skipped: no DSN")
  fi
fi

VERIFY_LINE="" SCALE_LINES=""
if want verify; then
  metrics_server verify -f ""
  log "integrity run: metrics-loadgen -n $CONNS -d ${DURATION}s"
  timeout $((DURATION + 120)) "$LOADGEN" -a "127.0.0.1:$PORT" -n "$CONNS" -d "${DURATION}s" \
    --server-pid "$SERVER_PID" >"$WORK/verify.txt" 2>&1 || true
  [[ -n ${RAW_DIR:-} ]] && cp "$WORK/verify.txt" "$RAW_DIR/"
  rps=$(awk '/^throughput/ {print $2}' "$WORK/verify.txt")
  p99=$(awk '/^latency/ {for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' "$WORK/verify.txt")
  errs=$(awk '/^errors/ {gsub(",", ""); print $3 + $6 + $8 + $10 + $12}' "$WORK/verify.txt")
  R_NAME+=("metrics-server, memory, driven by metrics-loadgen (verified)") R_RPS+=("${rps:-0}")
  R_P99+=("${p99:-?}") R_ERR+=("${errs:-?}") R_SAMPLES+=(29) R_NOTE+=("metrics-loadgen")
  VERIFY_LINE=$(grep -E "^(verify|result)" "$WORK/verify.txt" | tr '\n' ' ')
  stop_pid "$SERVER_PID"
fi

# json_field FILE NAME: the first "NAME":value of a metrics-loadgen --json report.
json_field() { grep -o "\"$2\":[^,}]*" "$1" 2>/dev/null | head -n1 | cut -d: -f2 || true; }

# loadgen_row NAME LABEL ARGS...: a fresh in-memory server driven for DURATION s
# by CONNS metrics-loadgen agents (closed loop, then verified); one table row.
# Sets LG_RPS to its requests/s.
loadgen_row() {
  local name=$1 label=$2; shift 2
  metrics_server "$name" -f "" "${SERVER_EXTRA[@]}"
  log "$label: metrics-loadgen -n $CONNS -d ${DURATION}s -t $LG_THREADS $*"
  timeout $((DURATION + 180)) "$LOADGEN" -a "127.0.0.1:$PORT" -n "$CONNS" -d "${DURATION}s" \
    -t "$LG_THREADS" --server-pid "$SERVER_PID" --json "$@" \
    >"$WORK/$name.json" 2>"$WORK/$name.err" || true
  [[ -n ${RAW_DIR:-} ]] && cp "$WORK/$name.json" "$RAW_DIR/"
  local f=$WORK/$name.json rps p99 rejected in_doubt errs ok
  rps=$(json_field "$f" requests_per_s) p99=$(json_field "$f" p99)
  rejected=$(json_field "$f" rejected) in_doubt=$(json_field "$f" in_doubt)
  errs=$(( ${rejected:-0} + ${in_doubt:-0} ))
  ok=$(json_field "$f" ok)
  R_NAME+=("$label") R_RPS+=("${rps:-0}") R_P99+=("${p99:-?}") R_ERR+=("$errs")
  R_SAMPLES+=(29) R_NOTE+=("metrics-loadgen")
  [[ $ok == true ]] || LABEL_PROBLEMS+="$label: verify $(json_field "$f" mismatches) mismatches, $(json_field "$f" unverified) unverified; "
  LG_RPS=${rps:-0}
  log "$label: ${rps:-0} requests/s, p99 ${p99:-?} ms, verify ok=${ok:-?}"
  stop_pid "$SERVER_PID"
}

# Issue 12: the same load as labelled envelopes (each connection its own
# instance, names shared, 29 metrics) and as unlabelled arrays (per-agent
# names), each on a fresh in-memory server, alternated so that drift in the
# machine's load hits both alike.
LABEL_LINE="" LABEL_PROBLEMS=""
if want labels; then
  LAB=() UNLAB=()
  for ((round = 1; round <= LABEL_ROUNDS; round++)); do
    order=(unlab lab)
    ((round % 2 == 0)) && order=(lab unlab)
    for kind in "${order[@]}"; do
      if [[ $kind == lab ]]; then
        loadgen_row "lab$round" "metrics-server, memory, labelled envelopes, round $round (metrics-loadgen)"
        LAB+=("$LG_RPS")
      else
        loadgen_row "unlab$round" "metrics-server, memory, unlabelled arrays, round $round (metrics-loadgen)" --no-labels
        UNLAB+=("$LG_RPS")
      fi
    done
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  m_lab=$(median "${LAB[@]}") m_unlab=$(median "${UNLAB[@]}")
  LABEL_LINE=$(awk -v l="$m_lab" -v u="$m_unlab" -v r="$LABEL_ROUNDS" 'BEGIN {
    printf "Labelled envelopes vs unlabelled arrays (%d rounds, medians): %.0f vs %.0f requests/s = %.2fx (issue 12 goal: >= 0.90x)", r, l, u, (u > 0) ? l / u : 0 }')
  [[ -n $LABEL_PROBLEMS ]] && LABEL_LINE+=" -- VERIFY FAILED: $LABEL_PROBLEMS"
fi

# Issue 13: labelled envelopes with the history written to a dir against
# history in memory only (and, with NO_HISTORY_SERVER, a build without
# history), alternated per round like the labels rows.
HIST_LINE=""
if want hist; then
  ON=() MEMO=() OFF=()
  for ((round = 1; round <= LABEL_ROUNDS; round++)); do
    order=(dir mem off)
    ((round % 2 == 0)) && order=(off mem dir)
    for kind in "${order[@]}"; do
      case $kind in
        dir)
          mkdir -p "$WORK/hist$round"
          SERVER_EXTRA=(--history-dir "$WORK/hist$round")
          loadgen_row "hdir$round" "metrics-server, memory, history dir, round $round (metrics-loadgen)"
          ON+=("$LG_RPS") ;;
        mem)
          SERVER_EXTRA=()
          loadgen_row "hmem$round" "metrics-server, memory, history in memory only, round $round (metrics-loadgen)"
          MEMO+=("$LG_RPS") ;;
        off)
          [[ -n $NO_HISTORY_SERVER ]] || continue
          saved=$SERVER SERVER=$NO_HISTORY_SERVER
          SERVER_EXTRA=()
          loadgen_row "hoff$round" "metrics-server without history, round $round (metrics-loadgen)"
          SERVER=$saved
          OFF+=("$LG_RPS") ;;
      esac
    done
  done
  SERVER_EXTRA=()
  median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  m_on=$(median "${ON[@]}") m_mem=$(median "${MEMO[@]}")
  HIST_LINE=$(awk -v d="$m_on" -v m="$m_mem" -v r="$LABEL_ROUNDS" 'BEGIN {
    printf "History dir vs memory only (%d rounds, medians): %.0f vs %.0f requests/s = %.2fx", r, d, m, (m > 0) ? d / m : 0 }')
  if ((${#OFF[@]} > 0)); then
    m_off=$(median "${OFF[@]}")
    HIST_LINE+=$(awk -v d="$m_on" -v o="$m_off" 'BEGIN {
      printf "; history dir vs no history: %.0f vs %.0f = %.2fx (issue 13 goal: >= 0.90x)", d, o, (o > 0) ? d / o : 0 }')
  fi
fi

if want scale; then
  metrics_server scale -f ""
  log "connection scale: metrics-loadgen -n $SCALE_CONNS -b $SCALE_BATCH --rate $SCALE_RATE -d ${SCALE_DURATION}s"
  # Labelled (the default): every connection is its own instance, so this is
  # also the integrity run over SCALE_CONNS x SCALE_BATCH series.
  timeout $((SCALE_DURATION + 300)) "$LOADGEN" -a "127.0.0.1:$PORT" -n "$SCALE_CONNS" \
    -b "$SCALE_BATCH" --rate "$SCALE_RATE" -d "${SCALE_DURATION}s" --server-pid "$SERVER_PID" \
    >"$WORK/scale.txt" 2>&1 || true
  [[ -n ${RAW_DIR:-} ]] && cp "$WORK/scale.txt" "$RAW_DIR/"
  SCALE_LINES=$(sed 's/^/    /' "$WORK/scale.txt")
  stop_pid "$SERVER_PID"
fi

echo "| target | requests/s | samples/s | p99 (ms) | errors | vs VictoriaMetrics | vs nginx ceiling |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for i in "${!R_NAME[@]}"; do
  awk -v name="${R_NAME[$i]}" -v rps="${R_RPS[$i]}" -v p99="${R_P99[$i]}" \
      -v err="${R_ERR[$i]}" -v s="${R_SAMPLES[$i]}" -v vm="$VM_RPS" -v ng="$NGINX_RPS" \
      -v note="${R_NOTE[$i]}" 'BEGIN {
    if (rps == "-") { printf "| %s | - | - | - | - | - | - |\n", name " (" note ")"; exit }
    samples = (s > 0) ? sprintf("%.0f", rps * s) : "-"
    rv = (vm > 0 && s == 29) ? sprintf("%.2fx", rps / vm) : "-"
    rn = (ng > 0) ? sprintf("%.2fx", rps / ng) : "-"
    printf "| %s | %.0f | %s | %s | %s | %s | %s |\n", name, rps, samples, p99, err, rv, rn }'
done
echo
if [[ -n $VERIFY_LINE ]]; then
  echo "Integrity (metrics-loadgen, $CONNS agents, ${DURATION}s): $VERIFY_LINE"
  echo
fi
if [[ -n $LABEL_LINE ]]; then
  echo "$LABEL_LINE"
  echo
fi
if [[ -n $HIST_LINE ]]; then
  echo "$HIST_LINE"
  echo
fi
if [[ -n $SCALE_LINES ]]; then
  echo "Connection scale and integrity ($SCALE_CONNS agents, each its own instance, $SCALE_BATCH metrics, paced at $SCALE_RATE request/s each, ${SCALE_DURATION}s):"
  echo
  echo "$SCALE_LINES"
  echo
fi
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
