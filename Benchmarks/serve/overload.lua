-- wrk script for the overload run (Benchmarks/load.sh): users.lua's paced open-loop GETs of
-- /v1/users/{user}/recommendations, and per status counts, whether every 503 carried Retry-After, and a bound on the
-- p99 of the admitted (non-503) requests. wrk keeps one latency histogram for all responses; with a share s of them
-- shed, at most 1 % of the admitted ones lie above the overall quantile 1 - 0.01 (1 - s), so that quantile bounds
-- the admitted p99 from above (exact when no request is shed).
--   wrk -t2 -c256 -d20s -s overload.lua http://127.0.0.1:8080 -- users.txt 8000 2   (file, total rate, wrk's -t)
-- The pacing, the user file and request() are users.lua's, loaded from this script's own directory.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "users.lua")

counts = {}   -- global: done() reads it through thread:get
shed_without_retry_after = 0

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
    if status == 503 and headers["Retry-After"] == nil and headers["retry-after"] == nil then
        shed_without_retry_after = shed_without_retry_after + 1
    end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
    local total, shed, other, no_retry = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        for status, n in pairs(c) do
            total = total + n
            if status == 503 then shed = shed + n elseif status ~= 200 then other = other + n end
        end
        no_retry = no_retry + t:get("shed_without_retry_after")
    end
    local s = total > 0 and shed / total or 0
    local bound_q = 100 * (1 - 0.01 * (1 - s))
    io.write(string.format("requests %d, duration %.1f s, rate %.0f/s, socket errors %d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
    io.write(string.format("status 200 %d, 503 %d (%.1f %%), other %d, 503 without Retry-After %d\n",
        total - shed - other, shed, 100 * s, other, no_retry))
    for _, p in ipairs({50, 90, 99, 99.9}) do
        io.write(string.format("all p%s %.3f ms\n", p, latency:percentile(p) / 1000))
    end
    io.write(string.format("admitted p99 <= %.3f ms (overall p%.3f)\n", latency:percentile(bound_q) / 1000, bound_q))
    io.write(string.format("max %.3f ms\n", latency.max / 1000))
end
