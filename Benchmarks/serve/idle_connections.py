"""Opens N connections to a server on loopback and sends nothing on them, for --seconds; then reports how many the
server had closed (read end-of-file or reset) and how many were still open.

    python3 idle_connections.py --port 8080 --count 1000 --seconds 15
"""
import argparse
import select
import socket
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, default=1000)
p.add_argument("--seconds", type=float, default=15)
a = p.parse_args()

socks, failed = [], 0
for _ in range(a.count):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", a.port))
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
print(f"idle: opened {len(socks)} connections ({failed} failed)", flush=True)
deadline = time.monotonic() + a.seconds
open_ = {s.fileno(): s for s in socks}
closed_at = []
start = time.monotonic()
poller = select.poll()
for s in socks:
    poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
while open_ and time.monotonic() < deadline:
    for fd, _ in poller.poll(100):
        s = open_.pop(fd, None)
        if s is None:
            continue
        poller.unregister(fd)
        try:
            s.recv(4096)
        except OSError:
            pass
        closed_at.append(time.monotonic() - start)
        s.close()
closed = len(closed_at)
first = f", first after {min(closed_at):.1f} s, last after {max(closed_at):.1f} s" if closed_at else ""
print(f"idle: after {a.seconds:.0f} s the server had closed {closed}{first}; {len(open_)} still open", flush=True)
for s in open_.values():
    s.close()
sys.exit(0)
