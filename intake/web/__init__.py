"""The staff desk: a Flask application in front of the same database and case actions as the CLI.

`create_app(settings)` is the desk's composition root; `intake web` and gunicorn
(`intake.web.wsgi:app`) both call it.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from intake.app import digest_service, renderer, reply_writer
from intake.db import create_schema, make_engine, session_factory
from intake.settings import Settings, secret
from intake.staff import StaffDesk
from intake.storage import FileStore
from intake.web.desk import DeskContext

IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=10)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _TlsAwareCookies(SecureCookieSessionInterface):
    """Flask's own cookie (it carries only the CSRF token) is Secure when the request came over
    TLS, as nginx reports it through X-Forwarded-Proto."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure


def _secret_key(settings: Settings) -> bytes:
    """From the environment variable web.secret_key_env, else a random key kept (0600) beside
    the stored materials, shared by every gunicorn worker on this machine."""
    if settings.web.secret_key_env:
        return secret(settings.web.secret_key_env, "web.secret_key_env").encode()
    path = Path(settings.storage.path) / "web-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a private name, then linked into place: a worker starting at the
        # same moment sees either no key file or a complete one, never an empty one.
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as stream:
                stream.write(secrets.token_hex(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another worker made it just now: everyone uses that one
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def create_app(settings: Settings, *, clock: Callable[[], datetime] = _utc_now,
               testing: bool = False) -> Flask:
    rules = settings.rules.to_rules()
    engine = make_engine(settings.database.url, settings.database.busy_timeout_seconds)
    # make_engine already gives SQLite writers BEGIN IMMEDIATE: the desk waits for the daemon.
    create_schema(engine)
    sessions = session_factory(engine)
    store = FileStore(settings.storage.path)
    templates = renderer(settings)
    writer = reply_writer(settings, templates)
    digests = digest_service(settings, sessions, store, templates, writer, clock)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_NAME="desk_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the desk session instead, which expires
        TESTING=testing,
    )
    app.session_interface = _TlsAwareCookies()
    if settings.web.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.web.proxy_hops,
                                x_proto=settings.web.proxy_hops, x_host=settings.web.proxy_hops)
    CSRFProtect(app)
    app.extensions["desk"] = DeskContext(
        settings=settings, engine=engine, sessions=sessions, store=store, digests=digests,
        staff=StaffDesk(sessions, store, writer, rules.item_keys, clock),
        item_keys=rules.item_keys, zone=settings.zone, clock=clock, idle=IDLE, longest=LONGEST)

    from intake.web import views
    app.register_blueprint(views.blueprint)

    @app.after_request
    def _security_headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # same-origin: Flask-WTF checks the Referer of HTTPS posts; other sites learn nothing.
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            # Case pages and pictures carry personal data: never kept by the browser or a proxy.
            response.headers["Cache-Control"] = "no-store"
        return response

    return app
