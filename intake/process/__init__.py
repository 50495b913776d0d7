"""Processing a recorded mail: parse and check (in a pool of processes), the per-mail pipeline, groups."""
