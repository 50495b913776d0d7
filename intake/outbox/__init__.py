"""Outgoing mail: rows queued with the state change that calls for them, drained over SMTP."""
