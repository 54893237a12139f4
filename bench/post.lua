-- wrk script for bench/run.py: POST a chat completion with the auth header.
-- Each request's prompt carries a counter (and the thread's id), so every request is a
-- cache miss for tiergate's exact cache. `done` prints one JSON line that run.py reads.
-- Environment: BENCH_PATH (default /v1/chat/completions), BENCH_KEY (virtual key),
-- BENCH_STREAM ("1" to ask for a stream).

local counter = 0
tid = 0 -- set per thread by setup()
local threads = {}
local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local key = os.getenv("BENCH_KEY") or "sk-bench"
local stream = os.getenv("BENCH_STREAM") == "1"
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. key,
}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = '{"model":"auto","messages":[{"role":"user","content":"Summarise request '
    .. tid .. "-" .. counter
    .. ' in one short sentence, please."}]'
    .. (stream and ',"stream":true' or "")
    .. "}"
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
