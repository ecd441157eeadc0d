-- The bare endpoint: GET /health/live, a constant answer with no key and no database.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.path = "/health/live"

setup = common.setup

function done(summary, latency, _requests)
  common.done(summary, latency)
end
