# Sourced by ./start and ./two-nodes (as root): installs Slurm and MUNGE with apt-get where they are missing, so
# a fresh Debian/Ubuntu machine needs nothing done by hand. Needs `die` and `note` defined by the caller.
SLURM_BINARIES=(slurmctld slurmd munged munge sinfo sbatch scontrol)

slurm_missing() {
    local b
    for b in "${SLURM_BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || return 0; done
    return 1
}

ensure_slurm_packages() {
    slurm_missing || return 0
    command -v apt-get >/dev/null 2>&1 || die "Slurm/MUNGE missing and no apt-get: install Slurm (slurmctld, slurmd, clients) and MUNGE yourself"
    note "installing slurm-wlm munge with apt-get ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    local b
    for b in "${SLURM_BINARIES[@]}"; do
        command -v "$b" >/dev/null 2>&1 || die "apt-get install slurm-wlm munge did not provide $b"
    done
}
