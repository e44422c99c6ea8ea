"""Compute targets: where a step's process runs. One launch description, thin launchers per target."""
