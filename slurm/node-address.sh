#!/usr/bin/env bash
# Prints the address other nodes reach this one at, for a server they connect to (the MLflow server, Ray's head).
#
# `hostname -i` is 127.0.0.1 or 127.0.1.1 on many nodes (Debian maps the hostname to loopback in /etc/hosts), and
# the first address of `hostname -I` can be a management or container interface. So: the address the node's name
# resolves to, when that is not loopback; else the source address of the route to the cluster's other nodes (the
# first of SLURM_JOB_NODELIST other than this one), else of the default route. A loopback answer is refused in one
# line: set REPROGBENCH_NODE_ADDRESS to the address on the cluster network.
set -euo pipefail

loopback() { [[ $1 == 127.* || $1 == ::1 || $1 == localhost ]]; }
route_source() { ip -o route get "$1" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit }}'; }

address=${REPROGBENCH_NODE_ADDRESS:-}
if [[ -z $address ]]; then
    address=$(getent ahostsv4 "$(hostname -f 2>/dev/null || hostname)" 2>/dev/null | awk 'NR == 1 {print $1}' || true)
    if [[ -z $address ]] || loopback "$address"; then
        peer=""
        if [[ -n ${SLURM_JOB_NODELIST:-} ]] && command -v scontrol >/dev/null; then
            other=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | grep -vx "$(hostname -s)" | head -n 1 || true)
            [[ -n $other ]] && peer=$(getent ahostsv4 "$other" | awk 'NR == 1 {print $1}' || true)
        fi
        [[ -n $peer ]] && ! loopback "$peer" && address=$(route_source "$peer")
        [[ -z $address ]] || loopback "$address" && address=$(route_source 192.0.2.255 || true)  # any non-local route
    fi
    [[ -n $address ]] || address=$(hostname -I 2>/dev/null | awk '{print $1}')
fi
if [[ -z $address ]] || loopback "$address"; then
    echo "reprogbench: this node's address is '${address:-none}', which other nodes cannot reach; set REPROGBENCH_NODE_ADDRESS to its address on the cluster network" >&2
    exit 2
fi
echo "$address"
