-- wrk script of bench/drain.py: half GET /, half POST /post with a unique id as the body.
--
-- Each wrk thread records, in its own Lua state, the CLOCK_MONOTONIC time (the clock of Python's
-- time.monotonic()) at which each 2xx response completed, the ids the app acknowledged (201 with
-- the id as its body) and a count per status. done() writes them all to $DRAIN_OUT:
--   t SECONDS        one line per 2xx response (completion time)
--   acked ID         one line per acknowledged POST
--   status CODE N    responses per HTTP status
--   errors connect|read|write|timeout N, requests N, latency_max_us N
-- Ids are $DRAIN_PREFIX-THREAD-N, unique within a window of the benchmark.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } drain_timespec;
int clock_gettime(int clk_id, drain_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("drain_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("number", count)
  table.insert(threads, thread)
end

function init(args)
  sent, done_at, acked, statuses = 0, {}, {}, {}
  prefix = os.getenv("DRAIN_PREFIX") .. "-" .. number .. "-"
  get = wrk.format("GET", "/", { ["Accept"] = "application/json" })
end

function request()
  sent = sent + 1
  if sent % 2 == 0 then
    return wrk.format("POST", "/post", { ["Content-Type"] = "text/plain" }, prefix .. sent)
  end
  return get
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    done_at[#done_at + 1] = now()
    if status == 201 then
      acked[#acked + 1] = body
    end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("DRAIN_OUT"), "w"))
  for _, thread in ipairs(threads) do
    for _, t in ipairs(thread:get("done_at")) do
      out:write(string.format("t %.6f\n", t))
    end
    for _, id in ipairs(thread:get("acked")) do
      out:write("acked ", id, "\n")
    end
    for code, n in pairs(thread:get("statuses")) do
      out:write("status ", code, " ", n, "\n")
    end
  end
  for _, kind in ipairs({ "connect", "read", "write", "timeout" }) do
    out:write("errors ", kind, " ", summary.errors[kind], "\n")
  end
  out:write("requests ", summary.requests, "\n")
  out:write("latency_max_us ", latency.max, "\n")
  out:close()
end
