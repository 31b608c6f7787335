-- GET of keys picked at random among <path>bench-pre-0 .. bench-pre-<count - 1>.
-- wrk ... -s get.lua http://host:port/db/ -- <count>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local count = 1

function init(args)
   count = tonumber(args[1]) or count
   math.randomseed(os.time())
end

function request()
   return wrk.format("GET", wrk.path .. "bench-pre-" .. math.random(0, count - 1))
end
