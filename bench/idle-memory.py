"""Where an idle tier's memory goes: PSS by mapping, from /proc/PID/smaps.

Usage: python3 bench/idle-memory.py [sink|relay|sender] [--after-message]   (release build; default sink)

Starts the binary on a free loopback port, waits for `listening on` (and with
--after-message sends it one message, as the harness does), reads its
smaps, groups the proportional set size by what is mapped (the binary, the
heap, thread stacks, anonymous memory, the vdso...), prints a table, stops it.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import http.client
import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import topology  # noqa: E402  (the one launcher of tiers)

args = [a for a in sys.argv[1:] if not a.startswith("--")]
tier = args[0] if args else "sink"
env = dict(os.environ, LISTEN_ADDR="127.0.0.1:0", DRAIN_DELAY="0", SINK_URL="127.0.0.1:9/",
           RELAY_URL="127.0.0.1:9/", SEND_INTERVAL="1m", SEND_RETRIES="0")
started = topology.TierProcess(tier, [f"target/release/{tier}"], env, output="read")
if not started.wait_listening():
    sys.exit(f"{tier} did not say it listens: {started.status()}; {started.last_line}")
addr = started.addr  # from its `listening on` line: the port the kernel picked
if "--after-message" in sys.argv:
    # As the benchmark harness does before its idle reading: one message first.
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/", body="Message sent from 10.0.0.1 on Wed, 25 Nov 2026 00:00:00 GMT")
    conn.getresponse().read()
    conn.close()
pss = Counter()
name = None
with open(f"/proc/{started.process.pid}/smaps") as smaps:
    for line in smaps:
        header = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
        if header:
            path = header.group(1).strip()
            name = os.path.basename(path) if path.startswith("/") else (path or "[anonymous: heap arenas, thread stacks]")
        elif line.startswith("Pss:"):
            pss[name] += int(line.split()[1])
threads = len(os.listdir(f"/proc/{started.process.pid}/task"))
started.stop()
print(f"{tier}: {sum(pss.values())} kB PSS in all, {threads} threads")
print("| mapping | PSS kB |")
print("|---|---|")
for mapping, kb in pss.most_common():
    if kb:
        print(f"| {mapping} | {kb} |")
