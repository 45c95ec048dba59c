# Sourced by the scripts that install what they need from Debian: installs the
# packages that are missing, once (root, for apt), and nothing when all are
# there, so a second run only checks.
#
#   source scripts/lib/apt.sh
#   apt_install_missing curl podman runc
#
# Package scripts are kept from starting system services (prometheus would)
# by a policy-rc.d that answers 101, the Debian way, removed afterwards.
apt_install_missing() {
  local p status missing=() policy=/usr/sbin/policy-rc.d made_policy=0
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2> /dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
}
