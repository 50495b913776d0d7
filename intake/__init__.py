"""The work that touches the world: mailbox, database, storage, the per-mail pipeline, the CLI."""
