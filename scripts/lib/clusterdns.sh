# A pod's resolver for a network namespace, for tests, the rollout rehearsal
# and the benchmark: the cluster DNS answers Service names the way CoreDNS
# does, and the namespace's /etc/resolv.conf is the one the kubelet writes.
#
#   source scripts/lib/clusterdns.sh
#   # on the host, before any `ip netns exec NETNS ...` (which bind-mounts it):
#   clusterdns_resolv NETNS NAMESPACE 10.96.0.10
#   # inside the namespace:
#   clusterdns_start DIR NAMESPACE 10.96.0.10           # dnsmasq on 10.96.0.10:53
#   clusterdns_set DIR sink-svc 10.96.0.20              # a Service's ClusterIP
#   clusterdns_set DIR sink-headless 10.244.3.1 10.244.3.2   # a headless one: every pod
#   clusterdns_set DIR sink-svc                         # no records: NXDOMAIN
#   clusterdns_stop DIR
#
# resolv.conf: `search <ns>.svc.cluster.local svc.cluster.local
# cluster.local`, the nameserver, `options ndots:5`, so `sink-svc` is looked
# up as sink-svc.<ns>.svc.cluster.local first, as in a pod. Debian's
# dnsmasq-base serves it with --local=/cluster.local/: a name it has no
# record of is NXDOMAIN, and a name with only IPv4 (or only IPv6) records
# answers the other type with NODATA, as CoreDNS does (without --local it
# answers REFUSED, which musl's resolver ignores and waits out). Records are
# one hosts file per Service under DIR/hosts, replaced atomically and
# reread by dnsmasq at once (inotify). Every query is logged to
# DIR/queries.log (`query[A] sink-svc.<ns>.svc.cluster.local from ...`);
# dnsmasq's pid is in DIR/dnsmasq.pid. An IPv6 nameserver address works too.

# clusterdns_resolv NETNS NAMESPACE NAMESERVER
clusterdns_resolv() {
  mkdir -p "/etc/netns/$1"
  printf 'search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n' \
    "$2" "$3" > "/etc/netns/$1/resolv.conf"
}

# clusterdns_start DIR NAMESPACE ADDRESS
clusterdns_start() {
  local dir=$1 address=$3 prefix=32
  mkdir -p "$dir/hosts"
  echo "$2" > "$dir/namespace"
  if [[ $address == *:* ]]; then prefix=128; fi
  if ! ip -o addr show dev lo | grep -q " $address/$prefix "; then
    # nodad: an IPv6 address is usable at once, not after duplicate address detection.
    ip addr add "$address/$prefix" dev lo $([ "$prefix" = 128 ] && echo nodad)
  fi
  ip link set lo up
  dnsmasq --no-resolv --no-hosts --local=/cluster.local/ --hostsdir="$dir/hosts" \
    --listen-address="$address" --bind-interfaces --port=53 --user=root \
    --pid-file="$dir/dnsmasq.pid" --log-queries --log-facility="$dir/queries.log"
}

# clusterdns_set DIR SERVICE [IP ...]
clusterdns_set() {
  local dir=$1 service=$2 ip fqdn
  fqdn="$service.$(cat "$dir/namespace").svc.cluster.local"
  shift 2
  # Written beside the watched folder, then moved in: dnsmasq never reads half a file.
  for ip in "$@"; do echo "$ip $fqdn"; done > "$dir/.$service.new"
  mv "$dir/.$service.new" "$dir/hosts/$service"
}

# clusterdns_stop DIR
clusterdns_stop() {
  if [ -f "$1/dnsmasq.pid" ]; then kill "$(cat "$1/dnsmasq.pid")" 2> /dev/null || true; fi
}
