-- POST /api/v1/policy/evaluate, every body distinct (a metadata value carries the thread and
-- a counter), so the decision cache never hits: compile-free evaluation + cache write + audit.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
common.post_json("")
local n = 0
local head = '{"type":"self_healing","action":"scale_up","resource":"service:bench-00001",'
  .. '"context":{"userId":"bench","role":"service","metadata":{"cpu":"95","request":"'

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. (tid or 0) .. "-" .. n .. '"}}}')
end
