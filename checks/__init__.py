"""Pure decisions about a submission: names and bytes in, findings out.

Nothing in this package opens a socket or a file, reads the clock or loads settings.
"""
