-- Shared by the scenario scripts (loaded with dofile): per-thread status counters and the
-- JSON summary that `aegis-loadgen wrk` reads from $BENCH_WRK_OUT. Every scenario, the ping
-- ceiling included, defines response() through this file, so all pay the same Lua cost.
local M = {}
local threads = {}
local count = 0

c409, c429, other = 0, 0, 0

function M.setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end

function M.response(status)
  if status == 409 then
    c409 = c409 + 1
  elseif status == 429 then
    c429 = c429 + 1
  elseif status < 200 or status > 299 then
    other = other + 1
  end
end

function M.done(summary, latency, _)
  local t = { c409 = 0, c429 = 0, other = 0 }
  for _, th in ipairs(threads) do
    for k in pairs(t) do
      t[k] = t[k] + (th:get(k) or 0)
    end
  end
  local e = summary.errors
  local f = assert(io.open(os.getenv("BENCH_WRK_OUT"), "w"))
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"c409":%d,"c429":%d,"other":%d,"socket_errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    t.c409, t.c429, t.other,
    e.connect + e.read + e.write + e.timeout, e.status))
  f:close()
end

-- Installs the shared callbacks into the calling script's globals.
function M.install()
  setup = M.setup
  response = M.response
  done = M.done
end

-- A JSON POST with the service key.
function M.post_json(body)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local key = os.getenv("BENCH_API_KEY")
  if key then
    wrk.headers["X-API-Key"] = key
  end
  wrk.body = body
end

return M
