"""Start a real single-node SLURM cluster on localhost for the cluster tests (Debian's slurm-wlm and munge).

``.ci/run`` installs the packages; this module writes ``/etc/slurm/slurm.conf`` (the compiled-in path: the
Snakemake job-step plugin drops ``SLURM_CONF`` from the environment of its inner ``srun``) and starts munged,
slurmctld and slurmd, unless a cluster already answers. No cgroups (proctrack/linuxproc, task/none), no
accounting (job states come from squeue, so finished jobs stay visible for MinJobAge = 600 s).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# spikeline test cluster"

CONF_TEMPLATE = """{marker} (written by tests/slurm_local.py)
ClusterName=spikeline
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def slurm_installed() -> bool:
    """Whether the SLURM daemons and client commands are on this machine."""
    return all(shutil.which(cmd) for cmd in ("slurmctld", "slurmd", "sbatch", "squeue", "munged"))


def _answers() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(state.strip("*") in ("idle", "mixed", "allocated") for state in
                                       out.stdout.split())


def ensure_local_slurm(timeout_s: float = 60.0) -> None:
    """Make sure a single-node cluster on localhost accepts jobs, starting it if needed.

    Raises
    ------
    RuntimeError
        When the daemons cannot be started, with what slurmctld/slurmd logged.
    """
    if _answers():
        return
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text():
        raise RuntimeError(f"{SLURM_CONF} exists and was not written by the tests, and no cluster answers sinfo; "
                           "start that cluster, or remove the file to let the tests write their own")
    import psutil

    memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.75)
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(CONF_TEMPLATE.format(marker=MARKER, host=socket.gethostname().split(".")[0],
                                               cpus=os.cpu_count() or 1, memory_mb=memory_mb))
    for folder in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm", "/run/munge"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "--create"], check=True)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
    for daemon in ("slurmctld", "slurmd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon], check=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _answers():
            return
        time.sleep(1)
    logs = "".join(Path(f"/var/log/slurm/{name}.log").read_text()[-2000:] for name in ("slurmctld", "slurmd")
                   if Path(f"/var/log/slurm/{name}.log").exists())
    raise RuntimeError(f"the local SLURM cluster did not come up within {timeout_s:.0f} s:\n{logs}")
