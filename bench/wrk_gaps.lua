-- wrk -s wrk_gaps.lua: wrk_summary.lua's JSON line plus "gap_us", the longest time between two
-- successful (2xx/3xx) responses of one wrk thread (run -t1: then it is the clients' longest
-- pause). Looking at every response costs wrk CPU: throughput runs use wrk_summary.lua.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clock, wrk_timespec *tp);
]]
local ts = ffi.new("wrk_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

last, gap = nil, 0 -- per thread (each has its own Lua state); read back in done()
function response(status, headers, body)
  if status >= 200 and status < 400 then
    local t = now_us()
    if last ~= nil and t - last > gap then
      gap = t - last
    end
    last = t
  end
end

function done(summary, latency, requests)
  local g = 0
  for _, thread in ipairs(threads) do
    local v = thread:get("gap")
    if v > g then
      g = v
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p99_us":%d,"max_us":%d,"gap_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, g))
end
