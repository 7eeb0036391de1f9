-- POST /api/v1/policy/evaluate, the same body every time: after the first request every
-- answer comes from the decision cache (Redis); each evaluation is still audited.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
common.post_json('{"type":"self_healing","action":"scale_up","resource":"service:bench-00001",'
  .. '"context":{"userId":"bench","role":"service","metadata":{"cpu":"95","source":"wrk"}}}')
