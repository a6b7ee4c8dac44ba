-- wrk: POST /updates/ with a 29-metric JSON batch shaped like the agent's
-- report (27 gauges, a per-agent counter, the shared hot counter). 256 agent
-- name prefixes are used in turn, so writes spread over names as real agents'
-- do; the requests are built once in init() so wrk's Lua costs nothing per request.
local gauges = {"Alloc", "BuckHashSys", "Frees", "GCCPUFraction", "GCSys", "HeapAlloc",
  "HeapIdle", "HeapInuse", "HeapObjects", "HeapReleased", "HeapSys", "LastGC", "Lookups",
  "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys", "Mallocs", "NextGC", "NumForcedGC",
  "NumGC", "OtherSys", "PauseTotalNs", "StackInuse", "StackSys", "Sys", "RandomValue"}
local requests = {}
local n = 0

function init(args)
  for a = 1, 256 do
    local parts = {}
    for k, name in ipairs(gauges) do
      parts[#parts + 1] = string.format('{"id":"a%d_%s","type":"gauge","value":%d.%d}',
                                        a, name, k * 1000 + a, k)
    end
    parts[#parts + 1] = string.format('{"id":"a%d_PollCount","type":"counter","delta":1}', a)
    parts[#parts + 1] = '{"id":"loadgen_hot","type":"counter","delta":1}'
    requests[a] = wrk.format("POST", "/updates/", {["Content-Type"] = "application/json"},
                             "[" .. table.concat(parts, ",") .. "]")
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
