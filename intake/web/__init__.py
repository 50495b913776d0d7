"""The staff desk: a Flask application in front of the same database and case actions as the CLI.

`create_app(desk)` makes the Flask application around a DeskContext; the composition root
(`intake.app.build_desk`, which `intake web` and gunicorn's `intake.web.wsgi:app` call) wires that.
Its pages come in blueprints: `auth` (sign in and out), `cases` (the queue, a case, its pictures,
actions and export), `questions` (待回复), `digests` (digests and the service's status) and `admin`
(accounts, the audit log); what they share (the sign-in guard, scope, audit, error pages) is in
`common`.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from intake.settings import Settings, secret
from intake.web.desk import DeskContext

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


class _TlsAwareCookies(SecureCookieSessionInterface):
    """Flask's own cookie (it carries only the CSRF token) is Secure when the request came over
    TLS, as nginx reports it through X-Forwarded-Proto."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure


def _secret_key(settings: Settings) -> bytes:
    """From the environment variable web.secret_key_env, else a random key kept (0600) beside
    the stored materials, shared by every gunicorn worker on this machine."""
    if settings.web.secret_key_env:
        return (secret(settings.web.secret_key_env, "web.secret_key_env") or "").encode()
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


def create_app(desk: DeskContext, *, testing: bool = False) -> Flask:
    settings = desk.settings
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
        app.wsgi_app = ProxyFix(app.wsgi_app,  # type: ignore[method-assign]  # Flask's documented way x_for=settings.web.proxy_hops,
                                x_proto=settings.web.proxy_hops, x_host=settings.web.proxy_hops)
    CSRFProtect(app)
    app.extensions["desk"] = desk

    from intake.web import admin, auth, cases, common, digests, questions
    common.install(app)  # the sign-in every page but the login form asks for, the error pages
    for pages in (auth, cases, questions, digests, admin):
        app.register_blueprint(pages.blueprint)

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
