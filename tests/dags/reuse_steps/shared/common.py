"""Code the steps depend on from outside their source folders (installed on the workers, say): listed in the
train step's hash_paths, so a change here re-runs it."""

SCALE = 1.0
