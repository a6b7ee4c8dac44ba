-- wrk: Prometheus Pushgateway, POST /metrics/job/bench/instance/a<N> with 29
-- samples in the text exposition format, 256 instances (groups) in turn.
local gauges = {"Alloc", "BuckHashSys", "Frees", "GCCPUFraction", "GCSys", "HeapAlloc",
  "HeapIdle", "HeapInuse", "HeapObjects", "HeapReleased", "HeapSys", "LastGC", "Lookups",
  "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys", "Mallocs", "NextGC", "NumForcedGC",
  "NumGC", "OtherSys", "PauseTotalNs", "StackInuse", "StackSys", "Sys", "RandomValue"}
local requests = {}
local n = 0

function init(args)
  for a = 1, 256 do
    local lines = {}
    for k, name in ipairs(gauges) do
      lines[#lines + 1] = string.format("# TYPE %s gauge\n%s %d.%d", name, name, k * 1000 + a, k)
    end
    lines[#lines + 1] = string.format("# TYPE PollCount counter\nPollCount %d", a)
    lines[#lines + 1] = "# TYPE loadgen_hot counter\nloadgen_hot 1"
    requests[a] = wrk.format("POST", string.format("/metrics/job/bench/instance/a%d", a),
                             {["Content-Type"] = "text/plain; version=0.0.4"},
                             table.concat(lines, "\n") .. "\n")
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
