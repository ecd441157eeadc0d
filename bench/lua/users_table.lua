-- The Users table as the console reads it: GET BENCH_PATH (its first page, or a search) with
-- an admin key.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(false)

setup = common.setup

local path = common.env("BENCH_PATH")

function init(_args)
  common.init()
end

function request()
  return wrk.format("GET", path)
end

function done(summary, latency, _requests)
  common.done(summary, latency)
end
