"""Operating the daemon: status, retention purge, reprocessing after a rule change, template checks."""
