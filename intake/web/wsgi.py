"""gunicorn entry point: `gunicorn 'intake.web.wsgi:app'` with INTAKE_CONFIG set."""
from __future__ import annotations

import os
from pathlib import Path

from intake.settings import load_settings
from intake.app import build_desk

from intake.errors import ConfigError

HOPS_VARIABLE = "INTAKE_WEB_PROXY_HOPS"


def _settings():
    """The config file's settings; INTAKE_WEB_PROXY_HOPS (set by config/jkb-intake-web.service,
    which always runs behind nginx) overrides `[web] proxy_hops`."""
    settings = load_settings(Path(os.environ.get("INTAKE_CONFIG", "intake.toml")))
    hops = os.environ.get(HOPS_VARIABLE)
    if hops is None:
        return settings
    if not hops.isdigit() or int(hops) > 5:
        raise ConfigError(f"{HOPS_VARIABLE}={hops!r}: give the number of reverse proxies in front "
                          f"(0 to 5; 1 behind config/nginx-intake.conf)")
    web = settings.web.model_copy(update={"proxy_hops": int(hops)})
    return settings.model_copy(update={"web": web})


app = build_desk(_settings())
