"""gunicorn entry point: `gunicorn 'intake.web.wsgi:app'` with INTAKE_CONFIG set."""
from __future__ import annotations

import os
from pathlib import Path

from intake.settings import load_settings
from intake.app import build_desk

app = build_desk(load_settings(Path(os.environ.get("INTAKE_CONFIG", "intake.toml"))))
