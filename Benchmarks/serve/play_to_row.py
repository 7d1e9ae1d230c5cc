#!/usr/bin/env python3
"""Latency from an accepted play to its "Because you played" row.

For each sample: pick a user and a track the user has not played, POST the play (fsync'ed: the 200 comes after the
durable append and the state update), then GET /v1/users/{u}/because-you-played until the first row's seed is the
track. The latency is from sending the POST to receiving the row (one keep-alive connection, stdlib only).

    play_to_row.py --port 8080 --token T --users users.txt --items items.txt --samples 300
"""
import argparse, http.client, json, random, statistics, sys, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=8080)
p.add_argument("--token", default="")
p.add_argument("--users", required=True)
p.add_argument("--items", required=True)
p.add_argument("--samples", type=int, default=300)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
users = [l.strip() for l in open(a.users) if l.strip()]
items = [l.strip() for l in open(a.items) if l.strip()]
rng = random.Random(a.seed)
conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
headers = {"Content-Type": "application/json"}
if a.token:
    headers["Authorization"] = f"Bearer {a.token}"
run = f"p2r-{int(time.time())}"
lat, post_lat, polls = [], [], []
for n in range(a.samples):
    user, item = rng.choice(users), rng.choice(items)
    body = json.dumps({"event_id": f"{run}-{n}", "user": user, "item": item, "type": "play", "ms_played": 200000,
                       "timestamp": int(time.time()) + 3600 + n})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/events", body=body, headers=headers)
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"POST answered {r.status}")
    t1 = time.perf_counter()
    k = 0
    while True:
        k += 1
        conn.request("GET", f"/v1/users/{user}/because-you-played?rows=1", headers=headers)
        r = conn.getresponse(); rows = json.loads(r.read())["rows"]
        if rows and rows[0]["seed"] == item:
            break
        if k > 1000:
            sys.exit(f"no row for {item} after 1000 reads")
    t2 = time.perf_counter()
    lat.append((t2 - t0) * 1000); post_lat.append((t1 - t0) * 1000); polls.append(k)

def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]
print(f"play->row samples {len(lat)}: p50 {pct(lat,50):.2f} ms, p90 {pct(lat,90):.2f} ms, p99 {pct(lat,99):.2f} ms, "
      f"max {max(lat):.2f} ms; POST alone p50 {pct(post_lat,50):.2f} ms p99 {pct(post_lat,99):.2f} ms; "
      f"reads until the row appeared: max {max(polls)}")
