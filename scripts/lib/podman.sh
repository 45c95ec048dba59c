# Sourced by the container tests: podman configured as these machines need it,
# without touching the machine's own configuration.
#
#   source scripts/lib/podman.sh
#   podman_config "$work"          # writes $work/containers.conf, exports CONTAINERS_CONF
#
# runc is the runtime Debian's podman works with here (crun is not installed),
# and the default ulimits give containers the descriptors and processes the
# tiers may use (the default nofile limit would lower MAX_CONNECTIONS).
podman_config() {
  export CONTAINERS_CONF="$1/containers.conf"
  cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
CONF
}
