-- wrk script: batch.lua's 29-metric batch as 64 Part 1 agents would send it
-- to tell themselves apart without labels: each agent's names carry its own
-- suffix (Alloc_h07, ...), so the server holds 64 x 29 series, as many as
-- envelope.lua's 64 instances make. Requests are built once at start.
local names = {"Alloc", "BuckHashSys", "Frees", "GCCPUFraction", "GCSys", "HeapAlloc",
  "HeapIdle", "HeapInuse", "HeapObjects", "HeapReleased", "HeapSys", "LastGC", "Lookups",
  "MCacheInuse", "MCacheSys", "MSpanInuse", "MSpanSys", "Mallocs", "NextGC", "NumForcedGC",
  "NumGC", "OtherSys", "PauseTotalNs", "StackInuse", "StackSys", "Sys", "TotalAlloc"}
local requests = {}
local headers = {["Content-Type"] = "application/json"}
for a = 1, 64 do
  local parts = {}
  for i, n in ipairs(names) do
    parts[#parts + 1] = string.format('{"id":"%s_h%02d","type":"gauge","value":%d.%d}', n, a,
      i * 1000, i)
  end
  parts[#parts + 1] = string.format('{"id":"PollCount_h%02d","type":"counter","delta":1}', a)
  parts[#parts + 1] = string.format('{"id":"RandomValue_h%02d","type":"gauge","value":0.123456789}', a)
  requests[a] = wrk.format("POST", "/updates/", headers, "[" .. table.concat(parts, ",") .. "]")
end
local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
