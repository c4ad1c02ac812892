-- wrk script for tests/test_drain_e2e.py: alternating GET / (JSON, the version answering) and
-- POST /post with a unique id per request (the app logs each id once: tests/drain_services.py).
-- Each thread writes what it saw to OUT.<thread> in done(): the ids answered 201, the ids sent,
-- the versions answering GET, and the answers that were neither 200 nor 201.
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   host, out, run = args[1], args[2], args[3]
   sent, answered, versions, bad = {}, {}, {}, {}
   pending = {}
end

request = function()
   counter = counter + 1
   if counter % 2 == 0 then
      local id = run .. "-" .. tid .. "-" .. counter
      table.insert(sent, id)
      return wrk.format("POST", "/post", {["Host"] = host, ["Content-Type"] = "text/plain"}, id)
   end
   return wrk.format("GET", "/", {["Host"] = host, ["Accept"] = "application/json"})
end

response = function(status, headers, body)
   if status == 201 then
      table.insert(answered, body)
   elseif status == 200 then
      local v = string.match(body, '"version"%s*:%s*"([^"]+)"')
      versions[v or "?"] = (versions[v or "?"] or 0) + 1
   else
      table.insert(bad, tostring(status))
   end
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      local f = io.open(thread:get("out") .. "." .. thread:get("tid"), "w")
      for _, id in ipairs(thread:get("sent")) do f:write("sent ", id, "\n") end
      for _, id in ipairs(thread:get("answered")) do f:write("answered ", id, "\n") end
      for v, n in pairs(thread:get("versions")) do f:write("version ", v, " ", n, "\n") end
      for _, s in ipairs(thread:get("bad")) do f:write("bad ", s, "\n") end
      f:close()
   end
   local e = summary.errors
   io.write(string.format("errors connect=%d read=%d write=%d status=%d timeout=%d requests=%d\n",
      e.connect, e.read, e.write, e.status, e.timeout, summary.requests))
end
