"""Rule families. Each module registers its codes in ``catalog`` and exposes checks the
engine calls; rules see one trace's context and return findings, nothing else."""
