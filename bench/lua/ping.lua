-- The ceiling: GET /api/v1/health/ping on the backend (no auth, no storage).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
wrk.method = "GET"
