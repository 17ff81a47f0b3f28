-- POST a form body with optional Basic auth; counts non-2xx answers by status.
-- Configured through environment variables set by run_token_bench.py.
local body = os.getenv("BENCH_BODY") or "grant_type=client_credentials"
local auth = os.getenv("BENCH_AUTH")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write("BENCH_JSON {")
  io.write(string.format('"requests": %d, "duration_us": %d, ', summary.requests, summary.duration))
  io.write(string.format('"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  local e = summary.errors
  io.write(string.format('"socket_errors": %d, "non_2xx": %d',
    e.connect + e.read + e.write + e.timeout, e.status))
  io.write("}\n")
end
