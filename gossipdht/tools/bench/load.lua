-- PUT of the rows of a TSV file (key<TAB>value) spread over several nodes.
-- BENCH_NODES="host:port host:port ..." wrk -t4 ... -s load.lua <url> -- <file> <prefix>
-- Thread i connects to node ((i - 1) mod #nodes) + 1 and PUTs every #threads-th row,
-- from row i on, as <prefix>c<cycle>-<key>, cycling over its rows until wrk's time is up:
-- wrk 4.1 runs for its whole -d even when every thread has called wrk.thread:stop().
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local started = 0

function setup(thread)
   local nodes = {}
   for host, port in (os.getenv("BENCH_NODES") or ""):gmatch("([^%s:]+):(%d+)") do
      nodes[#nodes + 1] = {host, port}
   end
   local node = nodes[started % #nodes + 1]
   started = started + 1
   thread.addr = wrk.lookup(node[1], node[2])[1]
   thread:set("index", started)
end

local rows = {}
local prefix = ""
local next_row = 1
local cycle = 0
local headers = {["Content-Type"] = "text/plain; charset=utf-8"}

local function escape(text)
   return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function init(args)
   local file, threads = args[1], tonumber(args[3])
   prefix = args[2]
   local number = 0
   for line in io.lines(file) do
      number = number + 1
      if (number - index) % threads == 0 then
         local key, value = line:match("^([^\t]*)\t(.*)$")
         rows[#rows + 1] = {escape(key), value}
      end
   end
end

function request()
   if next_row > #rows then
      next_row = 1
      cycle = cycle + 1
   end
   local row = rows[next_row]
   next_row = next_row + 1
   return wrk.format("PUT", "/db/" .. prefix .. "c" .. cycle .. "-" .. row[1], headers, row[2])
end
