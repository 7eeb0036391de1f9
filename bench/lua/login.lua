-- POST /api/v1/auth/login as the bootstrap admin: argon2id verification on every request.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.install()
common.post_json('{"email":"' .. os.getenv("BENCH_LOGIN_EMAIL") .. '","password":"'
  .. os.getenv("BENCH_LOGIN_PASSWORD") .. '"}')
wrk.headers["X-API-Key"] = nil
