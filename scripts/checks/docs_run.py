"""Runs the command blocks of README.md and docs/faults.md exactly as written, read out of the Markdown files.

Usage: python3 scripts/checks/docs_run.py [FILE.md ...]   (default: README.md docs/faults.md)

Every ```sh block is preceded by a directive, an HTML comment a reader of the
rendered page does not see:

  <!-- run -->            each line in turn, in bash, from the repository's
                          root; each must exit 0
  <!-- run: terminals, Ctrl-C after N s -->
                          each line "in its own terminal": the first (the
                          launcher) runs in the background until each of its
                          senders has had a message answered, then the others
                          run in turn (each must exit 0); N seconds later the
                          first gets Ctrl-C (SIGINT to its process group, as a
                          terminal sends it) and must exit 0
  <!-- not run here: REASON -->
                          needs what this host does not have (a Kubernetes
                          cluster, a registry); the reason is printed

A block without a directive fails the check. A ```text block preceded by
`<!-- output -->` is the output of the run block above it: each of its lines
must appear in what the commands printed, dates, numbers, ids and trace ids
aside (`...` lines skipped). Folders under /tmp that a file's blocks name are
removed first, as on a machine that has never run them. Every run has a
deadline.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import os
import re
import shutil
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The longest a block may take (the rollout rehearsal takes about a minute).
DEADLINE = 300
# How long a launcher may take to have each sender's first message answered.
READY_SECONDS = 120
DIRECTIVE = re.compile(r"<!--\s*(run(?::\s*(.*?))?|output|not run here:\s*(.*?))\s*-->")


def blocks(path):
    """The fenced blocks of `path`: (directive or None, info string, lines, line number)."""
    lines = open(path).read().splitlines()
    found, directive, i = [], None, 0
    while i < len(lines):
        line = lines[i].strip()
        match = DIRECTIVE.fullmatch(line)
        if match:
            directive = match.group(1)
        elif line.startswith("```"):
            start, info, body = i + 1, line[3:].strip(), []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            found.append((directive, info, body, start))
            directive = None
        elif line:
            directive = None if not line.startswith("<!--") else directive
        i += 1
    return found


def fail(where, text):
    sys.exit(f"docs_run: {where}: {text}")


def shell(command, where):
    """Runs one line as written; returns its output."""
    run = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
    if run.returncode != 0:
        fail(where, f"`{command}` exited {run.returncode}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return run.stdout + run.stderr


def terminals(lines, seconds, where):
    """The first line in the background until each sender answered; the rest; Ctrl-C after `seconds`."""
    log_path = os.path.join("/tmp", f"docs-run-{os.getpid()}.log")
    with open(log_path, "w") as log:
        first = subprocess.Popen(["bash", "-c", lines[0]], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        until = time.monotonic() + READY_SECONDS
        while not each_sender_answered(read(log_path)):
            if first.poll() is not None or time.monotonic() > until:
                fail(where, f"`{lines[0]}` did not have each sender's message answered:\n{''.join(read(log_path)[-30:])}")
            time.sleep(0.2)
        others = "".join(shell(line, where) for line in lines[1:])
        time.sleep(seconds)  # the scenario runs for a while before the user presses Ctrl-C
        os.killpg(first.pid, signal.SIGINT)
        code = first.wait(timeout=DEADLINE)
        if code != 0:
            fail(where, f"`{lines[0]}` exited {code} after Ctrl-C:\n{''.join(read(log_path)[-30:])}")
        return "".join(read(log_path)) + others
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(timeout=DEADLINE)
        os.remove(log_path)


def each_sender_answered(lines):
    """Whether each of the three senders has printed a lineage line (a message answered)."""
    return all(any(l.startswith(f"[sender-{i}] ") and " -> relay " in l for l in lines) for i in (1, 2, 3))


def read(path):
    with open(path, errors="replace") as f:
        return f.readlines()


def shape(line):
    """A line with what changes from run to run masked."""
    line = re.sub(r"\b[0-9a-f]{16,}\b", "<hex>", line.strip())
    line = re.sub(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} [\d:]+ GMT", "<date>", line)
    line = re.sub(r"\s+", " ", line)
    return re.sub(r"\d+(\.\d+)?", "#", line)


def check_output(sample, printed, where):
    seen = {shape(l) for l in printed.splitlines()}
    for line in sample:
        if line.strip() in ("", "...", "^C") or line.lstrip().startswith("$ "):
            continue
        if shape(line) not in seen:
            fail(where, f"the sample line {line.strip()!r} is not in what the commands printed:\n{printed[-3000:]}")


def commands(body):
    """A block's command lines (comments and blank lines are not commands)."""
    return [l for l in body if l.strip() and not l.lstrip().startswith("#")]


def run_file(path):
    found = blocks(os.path.join(ROOT, path))
    for folder in sorted(set(re.findall(r"/tmp/[\w.-]+", "\n".join("\n".join(b[2]) for b in found)))):
        shutil.rmtree(folder, ignore_errors=True)
    printed = None
    for directive, info, body, line in found:
        where = f"{path}:{line}"
        if directive == "output":
            if printed is None:
                fail(where, "an output block with no run block before it")
            check_output(body, printed, where)
            print(f"{where}: the sample output matches the run above")
            continue
        if info not in ("sh", "bash"):
            continue
        if directive is None:
            fail(where, "a command block with no directive (<!-- run -->, <!-- run: terminals, ... -->, <!-- not run here: ... -->)")
        if directive.startswith("not run here:"):
            print(f"{where}: not run here: {directive.split(':', 1)[1].strip()}")
            printed = None
            continue
        lines = commands(body)
        if directive == "run":
            printed = "".join(shell(l, where) for l in lines)
            print(f"{where}: ran {len(lines)} command(s)")
        else:
            terms = re.fullmatch(r"run:\s*terminals,\s*Ctrl-C after (\d+) s", directive)
            if not terms:
                fail(where, f"unknown directive <!-- {directive} -->")
            printed = terminals(lines, int(terms.group(1)), where)
            print(f"{where}: ran {len(lines)} command(s) in terminals, stopped by Ctrl-C")


def main():
    for path in sys.argv[1:] or ["README.md", "docs/faults.md"]:
        run_file(path)


if __name__ == "__main__":
    main()
