-- The usage report: POST /v1/call-control/usage, each with its own call_id and a random known
-- duration. Each thread keeps the reports not yet answered; an answered 2xx report counts its
-- duration, so the benchmark knows exactly which seconds the service acknowledged, and can resend
-- the reports still unanswered when wrk stops (as a SIP platform would retry them).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(true)

local path = "/v1/call-control/usage"
local body_format = '{"domain":"%s","username":"%s","call_id":"%s","destination":"%s",'
  .. '"started_at":"%s","duration_seconds":%d}'
local started_at = common.env("BENCH_STARTED_AT")
local max_duration = tonumber(common.env("BENCH_MAX_DURATION", "900"))

sent = 0
-- call_id -> request body, for reports sent and not yet answered with a 2xx.
pending = {}
durations = {}
-- Acknowledged reports: answered 201 (recorded now) or 200 (recorded before).
created = 0
repeated = 0
-- Durations of the acknowledged reports, by duration: {"125": 3, ...}.
acknowledged = {}
unmatched = 0
statuses = {}

setup = common.setup

function init(_args)
  common.init()
end

function request()
  sent = sent + 1
  local call_id = string.format("%s-%d-%d", common.run_tag, id, sent)
  local duration = math.random(1, max_duration)
  local destination = string.format("09%08d", math.random(0, 99999999))
  local body = string.format(
    body_format, common.domain, common.random_username(), call_id, destination, started_at,
    duration
  )
  pending[call_id] = body
  durations[call_id] = duration
  return wrk.format("POST", path, nil, body)
end

function response(status, _headers, body)
  if status ~= 200 and status ~= 201 then
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    return
  end
  local call_id = body:match('"call_id":"([^"]+)"')
  local duration = call_id and durations[call_id]
  if duration == nil then
    unmatched = unmatched + 1
    return
  end
  pending[call_id] = nil
  durations[call_id] = nil
  if status == 201 then
    created = created + 1
  else
    repeated = repeated + 1
  end
  local key = tostring(duration)
  acknowledged[key] = (acknowledged[key] or 0) + 1
end

function done(summary, latency, _requests)
  common.done(
    summary, latency,
    { "sent", "created", "repeated", "acknowledged", "pending", "unmatched", "statuses" }
  )
end
