"""Runs the command blocks of README.md, docs/*.md and bench/README.md exactly as written, read out of the Markdown files.

Usage: python3 scripts/checks/docs_run.py [FILE.md ...]   (default: README.md, docs/*.md, bench/README.md)

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
  <!-- run: one shell -->  the lines as one bash script, as typed into one
                          terminal (`cmd &` puts a tier in the background);
                          it must exit 0, and then each background job it left
                          gets SIGTERM (by its PID) and must be gone within
                          STOP_SECONDS
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
# How long a background job of a one-shell block may take to stop on SIGTERM
# (a tier drains for DRAIN_DELAY, 5 s by default, first).
STOP_SECONDS = 30
# Printed by a one-shell block at its end: the PIDs of the jobs it left.
JOBS_MARK = "docs_run: background jobs:"
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


def one_shell(lines, where):
    """The lines as one bash script; then its background jobs are stopped by PID."""
    script = "\n".join(lines) + f'\ncode=$?\necho "{JOBS_MARK} $(jobs -p | tr "\\n" " ")"\nexit $code\n'
    log_path = os.path.join("/tmp", f"docs-run-{os.getpid()}.log")
    try:
        with open(log_path, "w") as log:
            # The jobs keep the log open: wait for the shell, not for the end of its output.
            code = subprocess.Popen(["bash", "-c", script], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).wait(
                timeout=DEADLINE)
        marks = [l for l in read(log_path) if l.startswith(JOBS_MARK)]
        pids = [int(p) for p in marks[-1][len(JOBS_MARK):].split()] if marks else []
        stopped = stop(pids)
        printed = "".join(l for l in read(log_path) if not l.startswith(JOBS_MARK))
    finally:
        os.remove(log_path)
    if not stopped:
        fail(where, f"a background job did not stop within {STOP_SECONDS} s of SIGTERM:\n{printed[-2000:]}")
    if code != 0:
        fail(where, f"the block exited {code}:\n{printed[-3000:]}")
    return printed


def stop(pids):
    """SIGTERM to each of `pids`; whether all were gone within STOP_SECONDS (else SIGKILL)."""
    def signal_all(sig):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    signal_all(signal.SIGTERM)
    until = time.monotonic() + STOP_SECONDS
    while any(alive(pid) for pid in pids):
        if time.monotonic() > until:
            signal_all(signal.SIGKILL)
            return False
        time.sleep(0.1)
    return True


def alive(pid):
    """Whether `pid` still runs (a zombie whose parent has gone does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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
            fail(where, "a command block with no directive (<!-- run -->, <!-- run: one shell -->, <!-- run: terminals, ... -->, <!-- not run here: ... -->)")
        if directive.startswith("not run here:"):
            print(f"{where}: not run here: {directive.split(':', 1)[1].strip()}")
            printed = None
            continue
        lines = commands(body)
        if directive == "run":
            printed = "".join(shell(l, where) for l in lines)
            print(f"{where}: ran {len(lines)} command(s)")
        elif re.fullmatch(r"run:\s*one shell", directive):
            printed = one_shell(lines, where)
            print(f"{where}: ran {len(lines)} command(s) in one shell, its background jobs stopped")
        else:
            terms = re.fullmatch(r"run:\s*terminals,\s*Ctrl-C after (\d+) s", directive)
            if not terms:
                fail(where, f"unknown directive <!-- {directive} -->")
            printed = terminals(lines, int(terms.group(1)), where)
            print(f"{where}: ran {len(lines)} command(s) in terminals, stopped by Ctrl-C")


def every_doc():
    """README.md, every page under docs/, and bench/README.md."""
    docs = sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    return ["README.md", *docs, "bench/README.md"]


def main():
    for path in sys.argv[1:] or every_doc():
        run_file(path)


if __name__ == "__main__":
    main()
