# Sourced by the container tests: podman configured as these machines need it,
# without touching the machine's own configuration.
#
#   source scripts/lib/podman.sh
#   podman_config "$work"          # writes $work/containers.conf, exports CONTAINERS_CONF
#   kube_play_each "$work" check   # an overlay under kube play, Deployment by Deployment (below)
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

# Plays a rendered overlay under `podman kube play`, one Deployment at a time:
#   kube_play_each WORK CHECK [podman kube play flags...]
# For sinks, relays and senders in turn, plays WORK/kube-<deployment>.yaml
# (scripts/checks/split_deployments.py or lab_for_kube_play.py writes them),
# runs `CHECK <deployment>` while it runs, then takes it down. podman 4.3
# publishes every containerPort on the host (fixed in 4.4), so each uses host
# port 8080, which must be free. Appends each file to the caller's `played`
# array (for its cleanup) and fails through the caller's `fail`.
kube_play_each() {
  local work=$1 check=$2 deployment file
  shift 2
  if curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/; then fail "host port 8080 is taken; podman 4.3 kube play needs it"; fi
  for deployment in sinks relays senders; do
    file="$work/kube-$deployment.yaml"
    played+=("$file")
    # podman logs an error per healthcheck it cannot schedule without systemd; keep that out of sight.
    podman kube play "$@" "$file" > /dev/null 2>> "$work/podman.log" || { cat "$work/podman.log" >&2; fail "kube play $deployment"; }
    "$check" "$deployment"
    podman kube down "$file" > /dev/null 2>> "$work/podman.log"
  done
}
