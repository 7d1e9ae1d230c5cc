-- wrk script: POST /v1/events, one event a request (a batch of one), each with an event id no other request uses, as
-- fast as the connections go (closed loop), to measure how many acknowledged (fsync'ed) batches per second the
-- server takes at a given number of connections.
--   wrk -t1 -c32 -d10s -s ingest.lua http://127.0.0.1:8080 -- items.txt TOKEN RUN
local items = {}
local token = "bench"
local run = "r"
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
    thread:set("thread_id", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    for line in io.lines(args[1] or "items.txt") do
        if #line > 0 then items[#items + 1] = line end
    end
    token = args[2] or token
    run = args[3] or run
    math.randomseed(os.time() + thread_id)
end

function request()
    counter = counter + 1
    local item = items[math.random(#items)]
    local body = string.format(
        '{"event_id":"%s-%d-%d","user":"bench-u%d","item":"%s","type":"play","ms_played":60000,"timestamp":%d}',
        run, thread_id, counter, math.random(5000), item, os.time() - 60)
    return wrk.format("POST", "/v1/events",
        { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

local failures = 0
function response(status, headers, body)
    if status ~= 200 then failures = failures + 1 end
end
