-- wrk: single-metric text updates, POST /update/{type}/{name}/{value}, over
-- 256 agents' names (a gauge and a counter each), built once in init().
local requests = {}
local n = 0

function init(args)
  for a = 1, 256 do
    requests[#requests + 1] = wrk.format("POST", string.format("/update/gauge/a%d_Alloc/%d.5", a, a))
    requests[#requests + 1] = wrk.format("POST", string.format("/update/counter/a%d_PollCount/1", a))
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
