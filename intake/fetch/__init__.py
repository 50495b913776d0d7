"""Fetching: the IMAP adapter and the pass over the configured folders, with its fetch-ahead thread."""
