-- wrk script: GET /v1/users/{user}/recommendations for users picked at random from a file (one id a line),
-- paced so the total rate is fixed (open loop): each wrk thread (one Lua state, shared by its connections) hands out
-- send times on its own schedule (start + n * threads / rate, from CLOCK_MONOTONIC through LuaJIT's ffi), and
-- wrk's delay() holds each request until its slot, so a slow response does not lower the rate as long as some
-- connection is free at each slot (enough connections). Latency is measured by wrk from the send.
--   wrk -t2 -c40 -d30s -s users.lua http://127.0.0.1:8080 -- users.txt 2000 2   (file, total rate, wrk's -t)
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } encore_timespec;
int clock_gettime(int clk_id, encore_timespec *tp);
]]
local ts = ffi.new("encore_timespec")
local function now_ms()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local users = {}
local delay_ms = 0
local next_slot = nil

function init(args)
    local path = args[1] or "users.txt"
    for line in io.lines(path) do
        if #line > 0 then users[#users + 1] = line end
    end
    local rate = tonumber(args[2] or "0")        -- requests per second, all connections together
    local threads = tonumber(args[3] or "1")      -- must equal wrk's -t
    if rate > 0 then delay_ms = 1000 * threads / rate end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function delay()
    if delay_ms <= 0 then return 0 end
    local t = now_ms()
    if next_slot == nil then
        -- a random phase so the threads do not fire in lockstep
        next_slot = t + delay_ms * math.random()
    else
        next_slot = next_slot + delay_ms
    end
    if next_slot < t then return 0 end
    return next_slot - t
end

function request()
    local u = users[math.random(#users)]
    return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10")
end

function done(summary, latency, requests)
    io.write(string.format("requests %d, duration %.1f s, rate %.0f/s, errors %d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
    for _, p in ipairs({50, 90, 99, 99.9}) do
        io.write(string.format("p%s %.3f ms\n", p, latency:percentile(p) / 1000))
    end
    io.write(string.format("max %.3f ms\n", latency.max / 1000))
end
