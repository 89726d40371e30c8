-- wrk script for bench/run.
--   wrk ... -s load.lua URL -- file PREFIX [PATH]  each thread sends the pre-signed requests of
--                                             PREFIX.<thread number> once each, in order
--                                             (bench/tools/gen_commands.py writes them), and
--                                             stops when they run out (see request()); to PATH,
--                                             /api/v1/apps/commands unless given
--   wrk ... -s load.lua URL -- get PATH TOKEN   the same GET with a bearer token, again and again
-- With WRK_DELAY_MS set (bench/run --rate), each connection waits that long before each request.
-- done() prints one JSON line (prefixed "WRK_RESULT ") with the counts and latency percentiles.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  mode = args[1]
  sent = 0
  exhausted = 0
  if mode == "file" then
    local path = args[3] or "/api/v1/apps/commands"
    requests = {}
    for line in io.lines(args[2] .. "." .. thread_number) do
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
        ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig,
        ["Content-Type"] = "application/json",
      }, body)
    end
    total = #requests
    done_marker = args[2] .. ".done." .. thread_number
  else
    fixed = wrk.format("GET", args[2], { ["Authorization"] = "Bearer " .. args[3] })
  end
end

local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause then
  function delay()
    return pause
  end
end

function request()
  if mode ~= "file" then
    sent = sent + 1
    return fixed
  end
  if sent >= total then
    -- Out of distinct commands: stop this thread and leave a marker; bench/run sends wrk
    -- SIGINT once every thread has one, so the run (and its duration) ends there. The loop
    -- ends after this turn, so a few connections may still send the last request again
    -- (answered as a replay).
    if exhausted == 0 then
      exhausted = 1
      local f = io.open(done_marker, "w")
      if f then f:close() end
    end
    wrk.thread:stop()
    return requests[total]
  end
  sent = sent + 1
  return requests[sent]
end

function done(summary, latency, _)
  local planned, exhausted_threads = 0, 0
  for _, t in ipairs(threads) do
    planned = planned + (t:get("total") or 0)
    exhausted_threads = exhausted_threads + (t:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"planned":%d,"exhausted_threads":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes, planned, exhausted_threads,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
