-- wrk script for bench/run.py: cycles through precomputed token requests (valid app JWTs
-- over many users and stages) and counts statuses, so saturation is measured by a load
-- generator written in C rather than one in Python that would take a third of a core.
--
-- The requests come from the file named by the environment variable BENCH_REQUESTS: one
-- request per line, each line the raw HTTP/1.1 request with "\r\n" written as the two
-- characters "\" "r" / "\" "n" (so a request fits on a line). done() prints one line of
-- JSON: {"requests":..., "statuses":{"201":...}, "seconds":...}.

local requests = {}
local index = 0
statuses = {}  -- global: done() reads it from each thread with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  for line in io.lines(path) do
    local raw = line:gsub("\\r", "\r"):gsub("\\n", "\n")
    table.insert(requests, raw)
  end
  -- Threads start at different offsets so they do not send the same user in step.
  index = math.random(#requests)
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
  end
  return requests[index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, reqs)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  io.write(string.format(
    '{"requests":%d,"seconds":%.6f,"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
