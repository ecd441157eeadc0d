-- The registrar lookup: GET /v1/call-control/sip-accounts/{username}?domain=... over random
-- seeded usernames.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(false)

setup = common.setup

function init(_args)
  common.init()
end

function request()
  local path = string.format(
    "/v1/call-control/sip-accounts/%s?domain=%s", common.random_username(), common.domain
  )
  return wrk.format("GET", path)
end

function done(summary, latency, _requests)
  common.done(summary, latency)
end
