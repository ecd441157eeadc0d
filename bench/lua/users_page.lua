-- The Users table's first page, the operators' most frequent read: GET /v1/users?limit=50,
-- with whatever credential BENCH_TOKEN holds (an API key or a person's access token).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(false)

setup = common.setup

local page

function init(_args)
  common.init()
  page = wrk.format("GET", "/v1/users?limit=50")
end

function request()
  return page
end

function done(summary, latency, _requests)
  common.done(summary, latency)
end
