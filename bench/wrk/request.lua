-- One wrk scenario, configured from the environment by bench/run.sh:
--   BENCH_METHOD        GET (default) or POST
--   BENCH_TOKEN         sent as "Authorization: Bearer <token>" when set
--   BENCH_TOKENS_FILE   a file of tokens, one a line: each request sends the next one in turn
--                       (many users, one connection pool)
--   BENCH_IF_NONE_MATCH sent as "If-None-Match" when set
--   BENCH_BODY          request body (sent as application/json) when set
--   BENCH_OUT           file that receives the results as one JSON object
-- Every response's status is counted, so the report can tell a 304 from a 200.

local function env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    return nil
  end
  return value
end

wrk.method = env("BENCH_METHOD") or "GET"
wrk.headers["Accept"] = "application/json"
if env("BENCH_TOKEN") then
  wrk.headers["Authorization"] = "Bearer " .. env("BENCH_TOKEN")
end
if env("BENCH_IF_NONE_MATCH") then
  wrk.headers["If-None-Match"] = env("BENCH_IF_NONE_MATCH")
end
if env("BENCH_BODY") then
  wrk.body = env("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
end

-- With several tokens, every request is built once per token here and sent in turn.
local prepared = {}
local next_request = 0
if env("BENCH_TOKENS_FILE") then
  for token in io.lines(env("BENCH_TOKENS_FILE")) do
    if token ~= "" then
      local headers = {}
      for name, value in pairs(wrk.headers) do
        headers[name] = value
      end
      headers["Authorization"] = "Bearer " .. token
      table.insert(prepared, wrk.format(nil, nil, headers, nil))
    end
  end
  assert(#prepared > 0, "no token in BENCH_TOKENS_FILE")

  function request()
    next_request = next_request % #prepared + 1
    return prepared[next_request]
  end
end

-- Main state: keep the threads so done() can collect their counters.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Thread state: responses by status code.
statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function json_number(value)
  if value ~= value or value == math.huge or value == -math.huge then
    return "null"
  end
  return string.format("%.3f", value)
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local thread_statuses = thread:get("statuses") or {}
    for status, count in pairs(thread_statuses) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local status_parts = {}
  for status, count in pairs(counts) do
    table.insert(status_parts, string.format('"%d": %d', status, count))
  end
  table.sort(status_parts)

  local e = summary.errors
  local out = {}
  table.insert(out, "{")
  table.insert(out, string.format('"duration_us": %d,', summary.duration))
  table.insert(out, string.format('"requests": %d,', summary.requests))
  table.insert(out, string.format('"bytes": %d,', summary.bytes))
  table.insert(out, string.format(
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d},',
    e.connect, e.read, e.write, e.status, e.timeout))
  table.insert(out, '"statuses": {' .. table.concat(status_parts, ", ") .. "},")
  table.insert(out, string.format(
    '"latency_us": {"min": %s, "mean": %s, "stdev": %s, "max": %s, "p50": %s, "p90": %s, "p99": %s}',
    json_number(latency.min), json_number(latency.mean), json_number(latency.stdev),
    json_number(latency.max), json_number(latency:percentile(50)),
    json_number(latency:percentile(90)), json_number(latency:percentile(99))))
  table.insert(out, "}")

  local path = env("BENCH_OUT")
  if path then
    local file = assert(io.open(path, "w"))
    file:write(table.concat(out, "\n"), "\n")
    file:close()
  end
end
