-- wrk script: GET /v1/users/{user}/recommendations for users picked at random from a file (one id a line),
-- paced per connection so the total rate is fixed (wrk's delay() between a response and the next request).
--   wrk -t2 -c40 -d30s --latency -s users.lua http://127.0.0.1:8080 -- users.txt 2000 40
local users = {}
local delay_ms = 0

function init(args)
    local path = args[1] or "users.txt"
    for line in io.lines(path) do
        if #line > 0 then users[#users + 1] = line end
    end
    local rate = tonumber(args[2] or "0")        -- requests per second, all connections together
    local connections = tonumber(args[3] or "1")  -- must equal wrk's -c
    if rate > 0 then delay_ms = 1000 * connections / rate end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function delay()
    if delay_ms <= 0 then return 0 end
    -- jitter of +-20% so connections do not fire in lockstep
    return delay_ms * (0.8 + 0.4 * math.random())
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
