-- etcd 3's JSON gateway, which takes keys and values in base64:
--   wrk ... -s etcd.lua http://host:port -- put <prefix>   PUT of <prefix>-<n>, as put.lua writes them
--   wrk ... -s etcd.lua http://host:port -- get <count>    GET of bench-pre-0 .. bench-pre-<count - 1>, as get.lua
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local digit = {}
for i = 1, 64 do digit[i - 1] = ALPHABET:sub(i, i) end

local function base64(text)
   local out = {}
   for i = 1, #text, 3 do
      local a, b, c = text:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      out[#out + 1] = digit[math.floor(n / 262144)] .. digit[math.floor(n / 4096) % 64]
         .. (b and digit[math.floor(n / 64) % 64] or "=") .. (c and digit[n % 64] or "=")
   end
   return table.concat(out)
end

local mode, prefix, count, n = "put", "bench", 1, 0
local headers = {["Content-Type"] = "application/json"}

function init(args)
   mode = args[1] or mode
   if mode == "get" then count = tonumber(args[2]) or count else prefix = args[2] or prefix end
   math.randomseed(os.time())
end

function request()
   if mode == "get" then
      local key = "bench-pre-" .. math.random(0, count - 1)
      return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. base64(key) .. '"}')
   end
   n = n + 1
   local value = string.format("%08x%08x", n, (n * 2654435761) % 4294967296)
   return wrk.format("POST", "/v3/kv/put", headers,
      '{"key":"' .. base64(prefix .. "-" .. n) .. '","value":"' .. base64(value) .. '"}')
end
