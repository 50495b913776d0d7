"""The IMAP adapter: one session, read-only on content (BODY.PEEK), incremental by UID."""
from __future__ import annotations

import email
import imaplib
import ast
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from imapclient import IMAPClient, imap_utf7
from imapclient.exceptions import IMAPClientError, LoginError

from intake.errors import MailboxError, MailboxFolderMissing, MailboxLoginRefused

log = logging.getLogger(__name__)

_CLIENT_ID = {"name": "jkb-intake", "version": "0.1", "vendor": "jkb-intake",
              "support-email": "postmaster@localhost"}
_NETWORK_ERRORS = (IMAPClientError, imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError,
                   socket.timeout, ssl.SSLError)


def quiet_imaplib(client: IMAPClient) -> None:
    """IMAPClient turns imaplib's debug output fully on (level 5) and hands it to the
    "imapclient.imaplib" logger, so imaplib formats the repr of every response, whole mails
    included, whether or not anything logs it: a third of a core during a burst of mail, and
    students' mails and pictures in the log if that logger were ever set to DEBUG. Commands and
    replies are still logged by IMAPClient's own logger."""
    client._imap.debug = 0  # IMAPClient offers no public switch for this


@dataclass(frozen=True)
class MailboxEndpoint:
    host: str
    port: int
    security: str
    username: str
    password: str
    timeout: float = 60.0
    ca_file: str | None = None


@dataclass(frozen=True)
class FolderStatus:
    name: str
    uidvalidity: int
    keywords_allowed: bool


@dataclass(frozen=True)
class MessageSummary:
    uid: int
    internal_date: datetime | None
    size: int
    message_id: str | None


def _one_command_at_a_time(method):
    # The poller fetches the next bodies on a thread of its own while it handles the current
    # ones; an IMAP session carries one command at a time, so the others wait for that FETCH.
    @wraps(method)
    def serialised(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return serialised


class Mailbox:
    """A logged-in IMAP session. Network failures surface as MailboxError.

    Its commands may come from two threads; they run one after the other."""

    def __init__(self, endpoint: MailboxEndpoint):
        self._endpoint = endpoint
        self._client: IMAPClient | None = None
        self._lock = threading.RLock()

    @_one_command_at_a_time
    def connect(self) -> None:
        endpoint = self._endpoint
        try:
            # Loading the CA store costs a noticeable part of an idle poll: only when TLS is used.
            context = ssl.create_default_context(cafile=endpoint.ca_file) \
                if endpoint.security != "none" else None
            client = IMAPClient(endpoint.host, port=endpoint.port, ssl=endpoint.security == "ssl",
                                ssl_context=context, timeout=endpoint.timeout)
            quiet_imaplib(client)
            if endpoint.security == "starttls":
                client.starttls(context)
            client.login(endpoint.username, endpoint.password)
            # Coremail (126/163) refuses SELECT with "Unsafe Login" until the client identifies.
            if client.has_capability("ID"):
                client.id_(_CLIENT_ID)
        except LoginError as err:
            raise MailboxLoginRefused(
                f"IMAP login refused for {endpoint.username} at {endpoint.host}: {_short(err)}"
                + _password_hint(endpoint.host, client.welcome)) from err
        except _NETWORK_ERRORS as err:
            raise MailboxError(f"IMAP server {endpoint.host}:{endpoint.port} unreachable: "
                               f"{_short(err)}") from err
        client.normalise_times = False
        self._client = client

    @property
    def connected(self) -> bool:
        return self._client is not None

    @_one_command_at_a_time
    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except _NETWORK_ERRORS:
            try:
                client.shutdown()
            except _NETWORK_ERRORS:
                pass

    @_one_command_at_a_time
    def alive(self) -> bool:
        if self._client is None:
            return False
        try:
            self._client.noop()
            return True
        except _NETWORK_ERRORS:
            self._client = None
            return False

    def _require(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError("not connected to the IMAP server")
        return self._client

    @_one_command_at_a_time
    def select(self, folder: str) -> FolderStatus:
        client = self._require()
        folder = readable_folder_name(folder)
        try:
            if not client.folder_exists(folder):
                present = ", ".join(repr(name) for name in self._folder_names())
                raise MailboxFolderMissing(
                    f"mailbox.folders: the server has no folder {folder!r}; it has {present}. "
                    f"Put the names you want read in mailbox.folders")
            info = client.select_folder(folder)
        except _NETWORK_ERRORS as err:
            raise self._broken(f"selecting {folder!r}", err) from err
        permanent = info.get(b"PERMANENTFLAGS", ())
        return FolderStatus(folder, int(info[b"UIDVALIDITY"]), b"\\*" in permanent)

    def _folder_names(self) -> list[str]:
        listed = self._require().list_folders()
        return [name if isinstance(name, str) else name.decode(errors="replace")
                for _flags, _delimiter, name in listed]

    @_one_command_at_a_time
    def uids_after(self, last_uid: int) -> list[int]:
        client = self._require()
        try:
            found = client.search(["UID", f"{last_uid + 1}:*"])
        except _NETWORK_ERRORS as err:
            raise self._broken("searching", err) from err
        # "n:*" always matches the highest UID, even when it is below n.
        return sorted(uid for uid in found if uid > last_uid)

    def summaries(self, uids: Iterable[int]) -> Iterator[MessageSummary]:
        client = self._require()
        uids = list(uids)
        if not uids:
            return
        try:
            with self._lock:
                response = client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE",
                                               "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        except _NETWORK_ERRORS as err:
            raise self._broken("fetching summaries", err) from err
        for uid in sorted(response):
            data = response[uid]
            header = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            yield MessageSummary(uid, data.get(b"INTERNALDATE"), int(data.get(b"RFC822.SIZE", 0)),
                                 _message_id(header))

    @_one_command_at_a_time
    def fetch_raw(self, uid: int) -> bytes | None:
        """The whole message, without setting \\Seen; None when it has gone meanwhile."""
        client = self._require()
        try:
            response = client.fetch([uid], ["BODY.PEEK[]"])
        except _NETWORK_ERRORS as err:
            raise self._broken(f"fetching UID {uid}", err) from err
        data = response.get(uid)
        return None if data is None else data.get(b"BODY[]")

    @_one_command_at_a_time
    def fetch_raws(self, uids: list[int]) -> dict[int, bytes]:
        """Several whole messages in one FETCH round trip, without setting \\Seen; the caller
        bounds the batch by RFC822.SIZE so memory stays bounded. Gone messages are absent."""
        if not uids:
            return {}
        client = self._require()
        try:
            response = client.fetch(uids, ["BODY.PEEK[]"])
        except _NETWORK_ERRORS as err:
            raise self._broken(f"fetching {len(uids)} messages", err) from err
        return {uid: data[b"BODY[]"] for uid, data in response.items() if b"BODY[]" in data}

    @_one_command_at_a_time
    def add_keyword(self, uid: int | list[int], keyword: str) -> bool:
        """A visible mark for people using the mailbox (one STORE for a list of UIDs); our
        database stays the truth."""
        uids = uid if isinstance(uid, list) else [uid]
        if not uids:
            return True
        client = self._require()
        try:
            client.add_flags(uids, [keyword.encode("ascii")], silent=True)
            return True
        except _NETWORK_ERRORS as err:
            if isinstance(err, (OSError, imaplib.IMAP4.abort, socket.timeout)):
                # The session is gone (after the bodies came in one FETCH, this is where a
                # dropped connection shows): the poll reports it and the next one reconnects.
                raise self._broken("setting keywords", err) from err
            log.warning("could not set keyword on %d message(s): %s", len(uids), _short(err))
            return False

    def _broken(self, doing: str, err: Exception) -> MailboxError:
        if isinstance(err, (OSError, imaplib.IMAP4.abort, socket.timeout)):
            self._client = None  # the connection is gone; the next poll reconnects
        return MailboxError(f"IMAP failed while {doing}: {_short(err)}")


def readable_folder_name(name: str) -> str:
    """Folder names as people write them (垃圾邮件) or as IMAP does (&V4NXPpCuTvY-).

    imapclient encodes names itself, so an already-encoded one is decoded first.
    """
    if "&" not in name:
        return name
    try:
        return imap_utf7.decode(name.encode("ascii"))
    except (UnicodeError, ValueError):
        return name


# NetEase's servers (126.com, 163.com, yeah.net) run Coremail.
_NETEASE = ("126.com", "163.com", "yeah.net", "188.com", "netease.com")


def _password_hint(host: str, welcome) -> str:
    greeting = _as_text(welcome or b"").lower()
    if "coremail" in greeting or host.lower().endswith(_NETEASE):
        return (". NetEase/Coremail mailboxes take the authorization code (授权码) for IMAP, not "
                "the web-mail password: create one under 设置 → POP3/SMTP/IMAP and put it in the "
                "variable named by mailbox.password_env")
    return ""


_BYTES_LITERAL = re.compile(r"""(?<!\w)b(['"])(?:\\.|(?!\1).)*\1""")


def _as_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _short(err: Exception) -> str:
    """The server's reply as a person reads it: text, not b'...' reprs."""
    parts = [_as_text(arg) for arg in err.args] or [type(err).__name__]
    text = " ".join(part for part in parts if part) or type(err).__name__

    def decoded(match: re.Match) -> str:
        try:
            return ast.literal_eval(match.group(0)).decode("utf-8", errors="replace")
        except (ValueError, SyntaxError):
            return match.group(0)
    text = _BYTES_LITERAL.sub(decoded, text)
    return text.splitlines()[0][:300] if text.strip() else type(err).__name__


def _message_id(header_block: bytes) -> str | None:
    value = email.message_from_bytes(header_block).get("Message-ID")
    if not value:
        return None
    return str(value).strip()[:998] or None
