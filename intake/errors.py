"""One exception root, and the exit code each kind of failure gives the CLI."""
from __future__ import annotations


class IntakeError(Exception):
    exit_code = 1


class ConfigError(IntakeError):
    """The operator's configuration is wrong; the message names the key and the fix."""

    exit_code = 2


class MailboxError(IntakeError):
    """The IMAP server could not be reached, refused the login, or broke off."""

    exit_code = 3


class MailboxLoginRefused(MailboxError):
    """The IMAP server answered and refused the login: the password or 授权码 is wrong."""


class MailboxFolderMissing(ConfigError):
    """mailbox.folders names a folder the server does not have."""


class DeliveryError(IntakeError):
    exit_code = 4


class StorageError(IntakeError):
    exit_code = 5
