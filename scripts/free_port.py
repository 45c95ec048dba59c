"""Prints a TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).

Usage: python3 scripts/free_port.py
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import socket

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
