# Kubernetes ClusterIP Services as kube-proxy (iptables mode) makes them, for
# tests and the rollout rehearsal. Source it inside a network namespace you
# created (`unshare -n`, `ip netns exec`): the rules and addresses it adds
# must never touch the machine's own.
#
#   source scripts/lib/clusterip.sh
#   clusterip_init                                   # once per namespace
#   clusterip_set sink-svc 10.96.0.20 80 127.0.0.2:8080 127.0.0.3:8080
#   clusterip_set sink-svc 10.96.0.20 80 127.0.0.3:8080   # atomic replace
#   clusterip_set sink-svc fd00:10:96::20 80 '[fd00:10:244::2]:8080'   # IPv6: ip6tables
#
# Each Service is a chain KUBE-SVC-<NAME> reached from KUBE-SERVICES for its
# VIP:PORT; it picks one endpoint chain KUBE-SEP-<NAME>-<n> per new
# connection with kube-proxy's `-m statistic --mode random --probability`
# ladder (1/n, 1/(n-1), ..., 1), and the endpoint chain DNATs to the pod.
# Conntrack keeps an established connection on the pod it reached, as in a
# cluster. Every change is one `iptables-restore --noflush`, so a connection
# never meets a half-written chain. With no endpoints the chain is empty and
# connections to the VIP are refused.

clusterip_init() {
  ip link set lo up
  local restore
  for restore in iptables-restore ip6tables-restore; do
    "$restore" --noflush <<'RULES'
*nat
:KUBE-SERVICES - [0:0]
-A OUTPUT -j KUBE-SERVICES
COMMIT
RULES
  done
}

# clusterip_set NAME VIP PORT [IP:PORT ...]
clusterip_set() {
  local name=$1 vip=$2 port=$3
  shift 3
  local svc="KUBE-SVC-${name^^}" rules n=$# i=0 old stale="" ipt=iptables prefix=32
  if [[ $vip == *:* ]]; then ipt=ip6tables prefix=128; fi
  # The VIP is a local address of the namespace (its packets then need no
  # route), and KUBE-SERVICES sends its port to the Service chain.
  if ! ip -o addr show dev lo | grep -q " $vip/$prefix "; then
    # nodad: an IPv6 address is usable at once, not after duplicate address detection.
    ip addr add "$vip/$prefix" dev lo $([ "$prefix" = 128 ] && echo nodad)
  fi
  old=$($ipt -t nat -S | awk -v p="^-N KUBE-SEP-${name^^}-" '$0 ~ p {print $2}')
  # Declaring a chain in the input flushes it: the Service chain, its
  # endpoint chains, and endpoint chains left over from a larger set, which
  # are then deleted, all in the same step.
  for chain in $old; do
    if [ "${chain##*-}" -ge "$n" ]; then stale+=" $chain"; fi
  done
  rules="*nat
:$svc - [0:0]"
  for chain in $stale; do rules+="
:$chain - [0:0]"; done
  for endpoint in "$@"; do
    rules+="
:KUBE-SEP-${name^^}-$i - [0:0]"
    i=$((i + 1))
  done
  if ! $ipt -t nat -C KUBE-SERVICES -d "$vip/$prefix" -p tcp -m tcp --dport "$port" -j "$svc" 2> /dev/null; then
    rules+="
-A KUBE-SERVICES -d $vip/$prefix -p tcp -m tcp --dport $port -j $svc"
  fi
  i=0
  for endpoint in "$@"; do
    if [ $((n - i)) -gt 1 ]; then
      rules+="
-A $svc -m statistic --mode random --probability $(awk -v k=$((n - i)) 'BEGIN {printf "%.10f", 1 / k}') -j KUBE-SEP-${name^^}-$i"
    else
      rules+="
-A $svc -j KUBE-SEP-${name^^}-$i"
    fi
    rules+="
-A KUBE-SEP-${name^^}-$i -p tcp -m tcp -j DNAT --to-destination $endpoint"
    i=$((i + 1))
  done
  for chain in $stale; do rules+="
-X $chain"; done
  rules+="
COMMIT"
  "$ipt-restore" --noflush <<< "$rules"
}
