-- POST /ai-engine /api/v1/detect-anomaly with the bench signature (three metric types, five
-- points each; the shape aegis-loadgen trains the forests with), spread over 100 workloads
-- (bench/svc-0 … svc-99, one model each). 256 bodies with jittered values are built per thread
-- and cycled, so the baselines keep moving as in production.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
common.post_json("")
local types = {
  { "cpu_usage", 45.0, 10.0 },
  { "memory_usage", 60.0, 8.0 },
  { "error_rate", 0.5, 0.4 },
}
local bodies = {}
local i = 0

function init(_)
  math.randomseed(os.time() + (tid or 0))
  for b = 1, 256 do
    local series = (b + 37 * (tid or 0)) % 100
    local parts = {}
    for _, t in ipairs(types) do
      for p = 0, 4 do
        parts[#parts + 1] = string.format(
          '{"metric_type":"%s","value":%.4f,"timestamp":"2026-01-01T00:0%d:00Z","labels":{"namespace":"bench","deployment":"svc-%d"}}',
          t[1], t[2] + t[3] * (math.random() - 0.5), p, series)
      end
    end
    bodies[b] = wrk.format(nil, nil, nil, '{"metrics":[' .. table.concat(parts, ",") .. "]}")
  end
end

function request()
  i = i % #bodies + 1
  return bodies[i]
end
