-- wrk script: POST a summary request per call; count answers by status and check that every
-- 503 carries Retry-After. Run by scripts/load-test.sh.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"task": "summary"}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.path = args[1]
  codes = {}
  missing_retry_after = 0
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status == 503 and headers["Retry-After"] == nil and headers["retry-after"] == nil then
    missing_retry_after = missing_retry_after + 1
  end
end

function done(summary, latency, requests)
  local all, missing = {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do all[code] = (all[code] or 0) + n end
    missing = missing + t:get("missing_retry_after")
  end
  for code, n in pairs(all) do io.write(string.format("status %d: %d\n", code, n)) end
  io.write(string.format("503 without Retry-After: %d\n", missing))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("latency p%d: %.1f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
