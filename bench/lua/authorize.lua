-- The outbound authorization: POST /v1/call-control/authorizations for random seeded callers,
-- each request with its own call_id (a repeated call_id would only read the stored answer).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

common.use_key(true)

local path = "/v1/call-control/authorizations"
local body_format = '{"domain":"%s","username":"%s","call_id":"%s","destination":"%s"}'

sent = 0
-- Answers by reason ("ok", "quota_exhausted", ...), and by status for anything but 200.
reasons = {}
statuses = {}

setup = common.setup

function init(_args)
  common.init()
end

function request()
  sent = sent + 1
  local call_id = string.format("%s-%d-%d", common.run_tag, id, sent)
  local destination = string.format("09%08d", math.random(0, 99999999))
  local body = string.format(
    body_format, common.domain, common.random_username(), call_id, destination
  )
  return wrk.format("POST", path, nil, body)
end

function response(status, _headers, body)
  if status == 200 then
    local reason = body:match('"reason":"([%w_]+)"') or "unparsed"
    reasons[reason] = (reasons[reason] or 0) + 1
  else
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, _requests)
  common.done(summary, latency, { "sent", "reasons", "statuses" })
end
