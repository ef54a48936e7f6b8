# A Ray cluster inside the current Slurm allocation: sourced (not run) by slurm/ray-sweep.sbatch and by the job
# `reprogbench sweep --launcher slurm` submits through submitit, so both start Ray the same way. On return Ray runs
# on every node of the allocation, RAY_ADDRESS points at its head and an EXIT trap stops it when the job ends.
#
# One task per node: the first node runs the Ray head (and the sweep's driver, after this), every other node a Ray
# worker. Each node is given exactly the CPUs and GPUs Slurm allocated (--num-cpus / --num-gpus): Ray would
# otherwise count the whole machine, and trials would oversubscribe a node shared with other jobs.
#
# Ports: the head listens on RAY_PORT (default: 10000 + 1000 x (job id mod 22)) and every other port Ray opens on a
# node, its client server's included, is in the band of 1000 above it: two allocations sharing a node do not collide,
# and the band stays under Linux's ephemeral range (32768-60999 by default, where outgoing connections take their
# ports). A band whose head port already answers is skipped for the next one. Set RAY_PORT to choose.
# Address: the head's address on the cluster network (slurm/node-address.sh; REPROGBENCH_NODE_ADDRESS overrides).
# Every srun step is given the allocation's CPUs (SRUN_CPUS_PER_TASK: srun stopped inheriting them in Slurm 22.05).
# The head keeps its files in a folder of this job's (not /tmp/ray), so it never becomes the cluster that another
# user's plain `ray.init()` on the same node would join.
#
# Environment: REPROGBENCH_PYTHON, the Python with reprogbench installed (default: python3 on PATH).
py=${REPROGBENCH_PYTHON:-python3}
ray=("$py" -m ray.scripts.scripts)

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head=${nodes[0]}
[[ -n ${SLURM_CPUS_PER_TASK:-} ]] && export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK
here=$(dirname "${BASH_SOURCE[0]}")
head_ip=$(srun --overlap --nodes=1 --ntasks=1 -w "$head" bash "$here/node-address.sh") || exit 2
port_free() { ! timeout 2 bash -c ": </dev/tcp/$head_ip/$1" 2>/dev/null; }
if [[ -n ${RAY_PORT:-} ]]; then
    port=$RAY_PORT
    port_free "$port" || { echo "reprogbench: RAY_PORT $port is already in use on $head; choose another" >&2; exit 2; }
else
    for ((band = 0; band < 22; band++)); do
        port=$((10000 + 1000 * ((SLURM_JOB_ID + band) % 22)))
        port_free "$port" && break
    done
fi
cpus=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-$(nproc)}}
gpus=${SLURM_GPUS_ON_NODE:-0}
node_ports=(--node-manager-port=$((port + 1)) --object-manager-port=$((port + 2))
            --dashboard-agent-grpc-port=$((port + 3)) --dashboard-agent-listen-port=$((port + 4))
            --metrics-export-port=$((port + 5)) --runtime-env-agent-port=$((port + 6))
            --min-worker-port=$((port + 100)) --max-worker-port=$((port + 999)))
# Ray's client server (only where ray[client] is installed; `ray start` refuses the flag otherwise) gets a port of
# the band, not its default 10001, which can be another band's node manager
head_ports=()
if "$py" -c "import sys, ray._private.utils as u; sys.exit(u.get_ray_client_dependency_error() is not None)" 2>/dev/null; then
    head_ports=(--ray-client-server-port=$((port + 7)))
fi
common=(--num-cpus="$cpus" --num-gpus="$gpus" --disable-usage-stats --block "${node_ports[@]}")
export RAY_ADDRESS="$head_ip:$port"
# a token of this job's own for every Ray process it starts and for the driver: nobody else on a shared node can
# submit work to this cluster, and nothing depends on a token file in a home folder shared by every node
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$("$py" -c "import secrets; print(secrets.token_hex(32))")
export RAY_AUTH_TOKEN
export REPROGBENCH_RAY_NODES=${#nodes[@]}  # the driver waits for every node before sizing its concurrency

# Each node's `ray start --block` runs under a wrapper that notes its pid on that node: at the end of the job
# stop_ray (below) sends it SIGTERM there, which `ray start --block` answers by stopping its node's Ray processes
# and exiting; the wrapper then exits 0. Signalling srun instead makes srun kill the whole step ("forcing job
# termination ... task 0: Killed"), so Ray never shuts down cleanly.
export REPROGBENCH_RAY_STOP_DIR=${RAY_TMPDIR:-/tmp}/reprogbench-ray-stop-$SLURM_JOB_ID
# shellcheck disable=SC2016  # expanded by the bash on each node
ray_step='mkdir -p "$REPROGBENCH_RAY_STOP_DIR"; at=$REPROGBENCH_RAY_STOP_DIR/$SLURMD_NODENAME
"$@" & echo $! > "$at.pid"; wait $!; rc=$?
if [[ -e $at.stopping ]]; then rm -f "$at.pid" "$at.stopping"; rmdir "${at%/*}" 2>/dev/null; exit 0; fi; exit $rc'
on_node() { srun --overlap --nodes=1 --ntasks=1 -w "$1" "${@:2}"; }

echo "reprogbench: Ray head on $head ($RAY_ADDRESS), ${#nodes[@]} node(s), $cpus CPU(s) and $gpus GPU(s) each"
on_node "$head" bash -c "$ray_step" ray-step "${ray[@]}" start --head --node-ip-address="$head_ip" --port="$port" \
    --include-dashboard=false "${head_ports[@]}" --temp-dir="${RAY_TMPDIR:-/tmp}/ray-$SLURM_JOB_ID" "${common[@]}" &
head_pid=$!
# the head is up once its port answers (`ray status` would retry for minutes against a head that died)
until timeout 2 bash -c ": </dev/tcp/$head_ip/$port" 2>/dev/null; do
    if ! kill -0 "$head_pid" 2>/dev/null; then
        echo "reprogbench: the Ray head on $head did not start; its error is above" >&2
        exit 1
    fi
    sleep 1
done
for node in "${nodes[@]:1}"; do
    on_node "$node" bash -c "$ray_step" ray-step "${ray[@]}" start --address="$RAY_ADDRESS" "${common[@]}" &
done

# At exit, worker nodes first, then the head: SIGTERM to each node's `ray start --block` (found by the pid its
# wrapper noted), then up to RAY_STOP_TIMEOUT seconds (default 60) for every Ray step to end on its own; a step
# still running after that is ended through srun, as a job end would. The sweep's exit status stays the job's.
stop_ray() {
    local node
    for node in "${nodes[@]:1}" "$head"; do
        # shellcheck disable=SC2016  # expanded on the node
        on_node "$node" bash -c 'at=$REPROGBENCH_RAY_STOP_DIR/$SLURMD_NODENAME; touch "$at.stopping"
            [[ -s $at.pid ]] && kill -TERM "$(cat "$at.pid")" 2>/dev/null; true' || true
    done
    local deadline=$((SECONDS + ${RAY_STOP_TIMEOUT:-60}))
    while [[ -n $(jobs -pr) ]] && ((SECONDS < deadline)); do sleep 1; done
    if [[ -n $(jobs -pr) ]]; then
        echo "reprogbench: Ray did not stop within ${RAY_STOP_TIMEOUT:-60}s; ending its steps" >&2
        kill $(jobs -pr) 2>/dev/null || true
    else
        echo "reprogbench: Ray stopped on ${#nodes[@]} node(s)"
    fi
    wait || true  # a step ended by the kill above exits non-zero; the job's status is the sweep's
    rm -rf "$REPROGBENCH_RAY_STOP_DIR"
}
trap stop_ray EXIT
