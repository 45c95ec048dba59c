"""Prints a TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range (topology.free_port).

Usage: python3 scripts/free_port.py
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import topology  # noqa: E402  (its directory is first on sys.path when it runs)

print(topology.free_port())
