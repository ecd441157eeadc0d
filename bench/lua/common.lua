-- Shared by the wrk scripts: configuration from the environment, per-thread ids, and the
-- summary printed by done() as one JSON line, which bench/wrk.py parses.
local M = {}

local threads = {}

function M.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then
      error("environment variable " .. name .. " is not set")
    end
    return default
  end
  return value
end

-- A random seeded SIP username; the seeding names devices <prefix><index, 5 digits>.
function M.random_username()
  return string.format("%s%05d", M.username_prefix, M.first_user + math.random(M.users) - 1)
end

M.domain = M.env("BENCH_DOMAIN", "")
M.users = tonumber(M.env("BENCH_USERS", "0"))
-- The callers are users first_user .. first_user + users - 1.
M.first_user = tonumber(M.env("BENCH_FIRST_USER", "1"))
M.username_prefix = M.env("BENCH_USERNAME_PREFIX", "")
-- Call ids are unique across every wrk run of a benchmark: run tag, thread id, counter.
M.run_tag = M.env("BENCH_RUN_TAG", "run")

-- The call_control key on every request, and a JSON content type for bodies.
function M.use_key(json_body)
  wrk.headers["Authorization"] = "Bearer " .. M.env("BENCH_TOKEN")
  if json_body then
    wrk.headers["Content-Type"] = "application/json"
  end
end

function M.setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- Runs in each thread before its first request: `id` was set by setup().
function M.init()
  math.randomseed(os.time() * 1000 + id)
  for _ = 1, 10 do
    math.random()
  end
end

local encode

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n > 0 and n == #t
end

encode = function(value)
  local kind = type(value)
  if kind == "number" then
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then
      return string.format("%d", value)
    end
    return string.format("%.17g", value)
  elseif kind == "string" then
    return encode_string(value)
  elseif kind == "boolean" then
    return tostring(value)
  elseif kind == "nil" then
    return "null"
  elseif is_array(value) then
    local items = {}
    for _, item in ipairs(value) do
      table.insert(items, encode(item))
    end
    return "[" .. table.concat(items, ",") .. "]"
  end
  local items = {}
  for k, v in pairs(value) do
    table.insert(items, encode_string(tostring(k)) .. ":" .. encode(v))
  end
  return "{" .. table.concat(items, ",") .. "}"
end

-- `fields`: the names of each thread's globals to report (numbers or tables).
function M.done(summary, latency, fields)
  local result = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    latency_us = {
      mean = latency.mean,
      max = latency.max,
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
      p999 = latency:percentile(99.9),
    },
    threads = {},
  }
  for _, thread in ipairs(threads) do
    local entry = { id = thread:get("id") }
    for _, name in ipairs(fields or {}) do
      entry[name] = thread:get(name)
    end
    table.insert(result.threads, entry)
  end
  io.write("BENCH_JSON ", encode(result), "\n")
end

return M
