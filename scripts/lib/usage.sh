# Sourced first by every script in scripts/ and bench/, with the script's
# arguments: `--help` or `-h` prints the script's opening comment (its usage,
# what it does and what it needs) and exits 0, before anything runs.
#   source "$(dirname "$0")/lib/usage.sh" "$@"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"
  exit 0
fi
