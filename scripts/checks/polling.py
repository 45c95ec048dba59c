"""What the checks that run the on-host topology share: one HTTP call, polling with a deadline, a metric's value.

Not run on its own: `from polling import http, metric, wait_for` in a script of
scripts/checks (its directory is first on sys.path when it runs).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import time
import urllib.request


def http(method, url, accept=None):
    """The body of `method url` (5 s at most), as text; an error status raises."""
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.read().decode()


def wait_for(who, what, check, until):
    """Polls `check` every 50 ms until it is true or `until` (a monotonic time)
    passes, then exits naming `who` and `what`; a server not answering yet
    (OSError) counts as not yet."""
    while time.monotonic() < until:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{who}: {what} did not happen within its deadline")


def metric(text, series):
    """The sum of `series` in a /metrics exposition: its samples with any labels, or the one
    written with its labels (`name{a="b"}`); exemplars after `#` are left out; 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(series + " ") or line.startswith(series + "{"):
            total += float(line.split("#")[0].split()[-1])
    return total
