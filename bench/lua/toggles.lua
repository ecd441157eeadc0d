-- A write route: PATCH /v1/users/{id}/toggles, switching auto-answer on and off, over the
-- user ids in BENCH_USER_IDS_FILE (one per line). Requests are built before the run.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(true)

setup = common.setup

local requests = {}
local next_request = 0

function init(_args)
  common.init()
  local ids = {}
  for line in io.lines(common.env("BENCH_USER_IDS_FILE")) do
    table.insert(ids, line)
  end
  for i = 1, 4096 do
    local body = (i % 2 == 0) and '{"auto_answer":true}' or '{"auto_answer":false}'
    local path = string.format("/v1/users/%s/toggles", ids[math.random(#ids)])
    requests[i] = wrk.format("PATCH", path, nil, body)
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _requests)
  common.done(summary, latency)
end
