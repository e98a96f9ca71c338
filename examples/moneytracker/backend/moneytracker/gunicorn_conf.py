"""Gunicorn settings: gunicorn -c python:moneytracker.gunicorn_conf moneytracker.main:app

Workers come from WEB_CONCURRENCY (the deploy sizes it to the container's memory limit);
2 when unset. Nothing is written to the root filesystem: worker heartbeat files go to /dev/shm,
the control socket is off, logs go to stdout/stderr.
"""

import os
import sys

from moneytracker.release import ConfigError


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        print(f"moneytracker: {name}={raw!r} must be an integer >= {minimum}", file=sys.stderr)
        sys.exit(78)
    return value


bind = "0.0.0.0:8000"
workers = _int_env("WEB_CONCURRENCY", 2)
worker_class = "uvicorn.workers.UvicornWorker"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp"
timeout = _int_env("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
control_socket_disable = True


def on_starting(server):
    """Refuse to start (exit 78, EX_CONFIG) on bad configuration, before any worker boots."""
    from moneytracker.db import make_engine
    from moneytracker.settings import load_settings

    try:
        settings = load_settings()
        make_engine(settings.database_url).dispose()  # the engine's own settings (no connection yet)
    except ConfigError as exc:
        print(f"moneytracker: refusing to start: {exc}", file=sys.stderr, flush=True)
        sys.exit(78)
    server.log.info(
        "moneytracker release %s (schema head %s), %d workers",
        settings.release.version, settings.release.head, workers,
    )
