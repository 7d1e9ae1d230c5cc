#!/usr/bin/env python3
"""Latency from a posted track to its being recommendable.

For each sample: POST /v1/tracks one new track (an artist of the catalog and, when the bundle has a text space, the
text vector of one of that artist's tracks, from --text-vectors) with the journal fsync'ed, then
GET /v1/users/{u}/recommendations?k=1&exclude_played=false&allow=<new id> until the new track is the answer: the
query runs the full recommendation path (the user's vector, the bundle's items, the live index) restricted to the new
track, so it is returned exactly when the track is in the live index. The latency is from sending the POST to
receiving that answer (one keep-alive connection, stdlib only); the POST alone is reported too.

    track_to_recs.py --port 8080 --token T --users users.txt --artists artists.txt [--text-vectors tv.jsonl] --samples 300
"""
import argparse, http.client, json, random, sys, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=8080)
p.add_argument("--token", default="")
p.add_argument("--users", required=True)
p.add_argument("--artists", required=True)
p.add_argument("--text-vectors", default="", help="JSON lines {\"artist\": ..., \"vector\": [...]} to post as text_vector")
p.add_argument("--samples", type=int, default=300)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
users = [l.strip() for l in open(a.users) if l.strip()]
artists = [l.strip() for l in open(a.artists) if l.strip()]
vectors = [json.loads(l) for l in open(a.text_vectors)] if a.text_vectors else []
rng = random.Random(a.seed)
conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
headers = {"Content-Type": "application/json"}
if a.token:
    headers["Authorization"] = f"Bearer {a.token}"
run = f"ttr-{int(time.time())}"
lat, post_lat, polls, kinds = [], [], [], {}
for n in range(a.samples):
    user = rng.choice(users)
    track = {"id": f"{run}-{n}", "duration_ms": 200000, "release_date": "2026-12-07"}
    if vectors:
        v = rng.choice(vectors)
        track["artist"] = v["artist"]
        track["content"] = {"text_vector": v["vector"]}
    else:
        track["artist"] = rng.choice(artists)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/tracks", body=json.dumps(track), headers=headers)
    r = conn.getresponse(); body = json.loads(r.read())
    if r.status != 200:
        sys.exit(f"POST answered {r.status}: {body}")
    t1 = time.perf_counter()
    provenance = body["tracks"][0]["provenance"]
    kinds[provenance] = kinds.get(provenance, 0) + 1
    if provenance == "none":
        continue  # nothing to predict from: never recommendable
    k = 0
    while True:
        k += 1
        conn.request("GET", f"/v1/users/{user}/recommendations?k=1&exclude_played=false&allow={track['id']}", headers=headers)
        r = conn.getresponse(); items = json.loads(r.read())["items"]
        if items and items[0]["item"] == track["id"]:
            break
        if k > 1000:
            sys.exit(f"{track['id']} not recommendable after 1000 reads")
    t2 = time.perf_counter()
    lat.append((t2 - t0) * 1000); post_lat.append((t1 - t0) * 1000); polls.append(k)

if not lat:
    sys.exit(f"no posted track got a vector (provenance {kinds}): does the bundle have /hybrid/model, and are the artists catalog ids?")

def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]
print(f"post->recommendable samples {len(lat)}: p50 {pct(lat,50):.2f} ms, p90 {pct(lat,90):.2f} ms, p99 {pct(lat,99):.2f} ms, "
      f"max {max(lat):.2f} ms; POST alone p50 {pct(post_lat,50):.2f} ms p99 {pct(post_lat,99):.2f} ms; "
      f"reads until recommendable: max {max(polls)}; provenance {kinds}")
