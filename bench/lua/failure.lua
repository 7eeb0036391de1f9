-- POST /api/v1/detect-failure: an error-rate window and five recent ERROR logs (timestamps of
-- the script's start, inside FAILURE_DETECTION_WINDOW for the whole run).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
local now = os.time()
local logs = {}
for k = 0, 4 do
  logs[#logs + 1] = string.format(
    '{"timestamp":"%s","level":"ERROR","message":"connection refused by upstream db (attempt %d)","service":"api"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ", now - 50 + k * 10), k + 1)
end
common.post_json('{"metrics":[{"metric_type":"error_rate","value":0.4,"timestamp":"'
  .. os.date("!%Y-%m-%dT%H:%M:%SZ", now) .. '","labels":{"service":"api"}}],"logs":['
  .. table.concat(logs, ",") .. "]}")
