-- The same request again and again: wrk's default GET of the URL.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
