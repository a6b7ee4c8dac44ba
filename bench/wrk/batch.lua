-- wrk script: each request POSTs a 29-metric JSON batch shaped like the
-- agent's report (27 gauges, 2 counters) to /updates/.
local names = {"Alloc", "BuckHashSys", "Frees", "GCCPUFraction", "GCSys", "HeapAlloc",
  "HeapIdle", "HeapInuse", "HeapObjects", "HeapReleased", "HeapSys", "LastGC", "Lookups",
  "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys", "Mallocs", "NextGC", "NumForcedGC",
  "NumGC", "OtherSys", "PauseTotalNs", "StackInuse", "StackSys", "Sys", "TotalAlloc"}
local parts = {}
for i, n in ipairs(names) do
  parts[#parts + 1] = string.format('{"id":"%s","type":"gauge","value":%d.%d}', n, i * 1000, i)
end
parts[#parts + 1] = '{"id":"PollCount","type":"counter","delta":1}'
parts[#parts + 1] = '{"id":"RandomValue","type":"gauge","value":0.123456789}'
wrk.method = "POST"
wrk.path = "/updates/"
wrk.body = "[" .. table.concat(parts, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"
