-- The registrar lookup: GET /v1/call-control/sip-accounts/{username}?domain=... over random
-- seeded usernames. The requests are built once, before the run, and sent in turn: building one
-- per request would take wrk CPU from the server on the same cores.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(false)

setup = common.setup

local requests = {}
local next_request = 0

function init(_args)
  common.init()
  for i = 1, 4096 do
    local path = string.format(
      "/v1/call-control/sip-accounts/%s?domain=%s", common.random_username(), common.domain
    )
    requests[i] = wrk.format("GET", path)
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _requests)
  common.done(summary, latency)
end
