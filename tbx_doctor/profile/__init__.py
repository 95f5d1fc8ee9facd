"""Expectations a run is checked against (`expectations`), and learning them from healthy runs
(`learn`)."""
