-- The soak's traffic: token requests with one introspection in every INTROSPECT_EVERY,
-- each connection pausing BENCH_DELAY_MS between requests (wrk's delay()) to hold a rate.
-- Configured through environment variables set by bench/soak.py.
local token_auth = os.getenv("BENCH_AUTH")
local checker_auth = os.getenv("BENCH_CHECKER_AUTH")
local token = os.getenv("BENCH_TOKEN")
local every = tonumber(os.getenv("INTROSPECT_EVERY") or "4")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local form = "application/x-www-form-urlencoded"
local count = 0

function request()
  count = count + 1
  if count % every == 0 then
    return wrk.format("POST", "/token-srv/introspect",
      {["Authorization"] = checker_auth, ["Content-Type"] = form}, "token=" .. token)
  end
  return wrk.format("POST", "/token-srv/token",
    {["Authorization"] = token_auth, ["Content-Type"] = form}, "grant_type=client_credentials")
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %d, "socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect + e.read + e.write + e.timeout, e.status))
end
