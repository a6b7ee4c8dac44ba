-- wrk script: the batch of batch.lua (27 gauges, 2 counters) as the Part 2
-- agent sends it: an envelope with instance and job labels, from 64
-- instances in turn (requests built once at start, so wrk's Lua costs the
-- same as for batch.lua's fixed body).
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
local metrics = table.concat(parts, ",")
local requests = {}
local headers = {["Content-Type"] = "application/json"}
for i = 1, 64 do
  local body = string.format(
    '{"labels":{"instance":"host-%02d.example:%d","job":"metrics-agent"},"metrics":[%s]}',
    i, 40000 + i, metrics)
  requests[i] = wrk.format("POST", "/updates/", headers, body)
end
local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
