"""Cluster execution: the same steps as a local run, one SLURM job per step per stream, through Snakemake."""

from .profile import ClusterProfile, load_profile
from .submit import Submission, check_snakemake, submit

__all__ = ["ClusterProfile", "Submission", "check_snakemake", "load_profile", "submit"]
