-- wrk script: GET one path; count answers by status. Run by scripts/load-test.sh.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.path = args[1]
  codes = {}
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do all[code] = (all[code] or 0) + n end
  end
  for code, n in pairs(all) do io.write(string.format("status %d: %d\n", code, n)) end
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("latency p%d: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
end
