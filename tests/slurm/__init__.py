"""End-to-end tests against a real single-node SLURM cluster started by the fixture here."""
