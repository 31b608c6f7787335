-- PUT of distinct keys under the URL's path: <path><prefix>-<n>, with a 16-byte body.
-- wrk ... -s put.lua http://host:port/db/ -- <prefix>   (one thread: the counter is per thread)
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local prefix = "bench"
local n = 0
local headers = {["Content-Type"] = "application/octet-stream"}

function init(args)
   prefix = args[1] or prefix
end

function request()
   n = n + 1
   local body = string.format("%08x%08x", n, (n * 2654435761) % 4294967296)
   return wrk.format("PUT", wrk.path .. prefix .. "-" .. n, headers, body)
end
