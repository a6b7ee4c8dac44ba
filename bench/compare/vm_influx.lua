-- wrk: VictoriaMetrics, POST /write in Influx line protocol, 29 samples per
-- request (one line each, as the agent's 29 metrics), 256 agent tags in turn.
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
      lines[#lines + 1] = string.format("%s,agent=a%d value=%d.%d", name, a, k * 1000 + a, k)
    end
    lines[#lines + 1] = string.format("PollCount,agent=a%d value=%d", a, a)
    lines[#lines + 1] = "loadgen_hot,agent=all value=1"
    requests[a] = wrk.format("POST", "/write", {["Content-Type"] = "text/plain"},
                             table.concat(lines, "\n") .. "\n")
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
