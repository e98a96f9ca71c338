#!/usr/bin/python3
"""moneytracker-db: backups, integrity checks, restores and the maintenance lock
for the MoneyTracker SQLite database on a Docker Compose host; with "engine": "postgres", the
same commands drive pgBackRest inside the project's PostgreSQL container (docs/postgres.md).

One stdlib-only file (Python >= 3.11), installed as /usr/local/sbin/moneytracker-db.
Used by cron, by Ansible plays (--json: one JSON object on stdout) and by operators.
The full reference is docs/host-tool.md in the moneytracker.deploy collection.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import getpass
import gzip
import hashlib
import json
import logging
import logging.handlers
import os
import re
import secrets
import shlex
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

TOOL = "moneytracker-db"
VERSION = "1.0.0"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_STALE = 4
EXIT_SKIPPED = 75  # EX_TEMPFAIL

DEFAULT_CONFIG = "/etc/moneytracker-db/config.json"
CONFIG_ENV = "MONEYTRACKER_DB_CONFIG"
SYSLOG_ENV = "MONEYTRACKER_DB_SYSLOG"  # socket path; "none" disables syslog

JOBS = ("backup", "prune", "check_quick", "check_full", "restore", "offsite")
BACKUP_RE = re.compile(r"^moneytracker-(\d{8}T\d{6}Z)(?:-(\d+))?\.db\.(zst|gz)$")
MANIFEST_SUFFIX = ".manifest.json"
EXT = {"zstd": "zst", "gzip": "gz"}
METHOD_OF_EXT = {"zst": "zstd", "gz": "gzip"}
COMMAND_TIMEOUT_SECONDS = 900
CHUNK = 1 << 20
# unlock.yml, not `lock break`: it also finishes or reverts a migration the dead run left open.
UNLOCK_HINT = "ansible-playbook -i <inventory> playbooks/unlock.yml (docs/runbooks/clear-a-stale-lock.md)"

EXIT_CODES_HELP = """exit codes:
  0   ok
  1   failed (verification, check or I/O failure; details on stderr and in syslog)
  2   usage or configuration error (the message names the bad option or key)
  3   maintenance lock held by someone else / confirmation required (restore without --yes)
  4   maintenance lock is stale (past its TTL); it is never taken over automatically
  75  skipped (EX_TEMPFAIL): maintenance lock held, or another moneytracker-db job running
"""

LOG = logging.getLogger(TOOL)


# --------------------------------------------------------------------------- errors


class ToolError(Exception):
    """A failure with an exit code and a one-line message for people and syslog."""

    def __init__(self, message: str, code: int = EXIT_FAILED, **details):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details


class ConfigError(ToolError):
    def __init__(self, key: str | None, message: str):
        text = f"config error: '{key}': {message}" if key else f"config error: {message}"
        super().__init__(text, EXIT_USAGE, key=key)


class UsageError(ToolError):
    def __init__(self, message: str):
        super().__init__(f"usage error: {message}", EXIT_USAGE)


class Skip(ToolError):
    def __init__(self, message: str, **details):
        super().__init__(message, EXIT_SKIPPED, **details)


class MissingDatabase(ToolError):
    pass


# --------------------------------------------------------------------------- logging


class _QuietSysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record):  # a dead syslog must never break a backup
        pass


def setup_logging() -> None:
    LOG.handlers.clear()
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    address = os.environ.get(SYSLOG_ENV, "/dev/log")
    if address and address != "none" and os.path.exists(address):
        try:
            handler = _QuietSysLogHandler(address=address,
                                          facility=logging.handlers.SysLogHandler.LOG_DAEMON)
            if handler.socket is not None:
                handler.socket.settimeout(2.0)  # a stuck syslog must not hang a job
            handler.setFormatter(logging.Formatter(f"{TOOL}[%(process)d]: %(message)s"))
            handler.setLevel(logging.INFO)
            LOG.addHandler(handler)
        except OSError:
            pass
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.addFilter(lambda record: getattr(record, "stderr", True))
    err.setFormatter(logging.Formatter(f"{TOOL}: %(message)s"))
    LOG.addHandler(err)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- time / format


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_stamp(text: str) -> float:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.UTC).timestamp()


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# --------------------------------------------------------------------------- files


def fsync_path(path: str) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, tmp_dir: str | None = None) -> None:
    """temp file (same filesystem) + fsync + rename + fsync of the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp_dir = tmp_dir or directory
    tmp = os.path.join(tmp_dir, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(directory)


def sha256_file(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def remove_quietly(*paths: str) -> None:
    for path in paths:
        if path:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(path)


def sqlite_side_files(path: str) -> list[str]:
    return [path + suffix for suffix in ("-journal", "-wal", "-shm")]


def mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return ("disk is full" in text or "no space left" in text or "quota exceeded" in text)


def sqlite_uri(path: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + ("?" + query if query else "")


def ensure_dir(path: str, mode: int = 0o700, key: str | None = None, strict_mode: bool = False) -> None:
    if not os.path.isdir(path):
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)
        except OSError as exc:
            raise ToolError(f"cannot create {key or 'directory'} {path}: {exc.strerror or exc}") from exc
    elif strict_mode and stat.S_IMODE(os.stat(path).st_mode) & 0o077:
        os.chmod(path, mode)
        LOG.warning("%s: permissions of %s tightened to %04o", key or path, path, mode)


# --------------------------------------------------------------------------- config

DEFAULTS: dict = {
    "engine": "sqlite",
    # engine postgres: the compose project and service of the server, pgBackRest's stanza, and the
    # host directory of its repository (bind-mounted into the container; for the free-space metric).
    "postgres": None,
    "database": None,
    "volume": None,
    "database_name": None,
    "backup_dir": "/var/backups/moneytracker",
    "state_dir": "/var/lib/moneytracker-db",
    "lock_ttl_seconds": 3600,
    "busy_timeout_ms": 5000,
    "compression": "auto",
    "retention": {"daily": 7, "weekly": 4, "monthly": 6},
    "stop_command": None,
    "start_command": None,
    "textfile_dir": None,
    "offsite": None,
    "db_owner": None,
    "releases_dir": None,
}


def _parse_command(key: str, value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(key, f"not a JSON list: {exc.msg}") from exc
    return shlex.split(value)


def load_config(args) -> dict:
    explicit = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    path = explicit or DEFAULT_CONFIG
    raw: dict = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ConfigError(None, f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
        except OSError as exc:
            raise ConfigError(None, f"cannot read {path}: {exc.strerror}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(None, f"{path} must contain a JSON object")
    elif explicit:
        raise ConfigError(None, f"config file {path} does not exist")
    for key in raw:
        if key not in DEFAULTS:
            raise ConfigError(key, f"unknown key in {path} (known keys: {', '.join(sorted(DEFAULTS))})")

    cfg = json.loads(json.dumps(DEFAULTS))
    for key, value in raw.items():
        if key == "retention" and isinstance(value, dict):
            cfg["retention"].update(value)
        else:
            cfg[key] = value
    cfg["_config_path"] = path if os.path.exists(path) else None

    # CLI overrides (every key)
    def ov(name):
        return getattr(args, name, None)

    if ov("database") is not None:
        cfg.update(database=ov("database"), volume=None, database_name=None)
    if ov("volume") is not None:
        cfg.update(volume=ov("volume"), database=None)
    if ov("database_name") is not None:
        cfg["database_name"] = ov("database_name")
    for key in ("backup_dir", "state_dir", "textfile_dir", "compression", "db_owner", "releases_dir"):
        if ov(key) is not None:
            cfg[key] = ov(key)
    for key in ("lock_ttl_seconds", "busy_timeout_ms"):
        if ov(key) is not None:
            cfg[key] = ov(key)
    for tier in ("daily", "weekly", "monthly"):
        if ov(f"retention_{tier}") is not None:
            if not isinstance(cfg["retention"], dict):
                cfg["retention"] = {}
            cfg["retention"][tier] = ov(f"retention_{tier}")
    for key in ("stop_command", "start_command"):
        if ov(key) is not None:
            cfg[key] = _parse_command(key, ov(key))
    if ov("offsite_path") is not None:
        cfg["offsite"] = {"path": ov("offsite_path")}
    if ov("offsite_rsync") is not None:
        cfg["offsite"] = {"rsync": ov("offsite_rsync")}
    if ov("no_offsite"):
        cfg["offsite"] = None
    validate_config(cfg)
    return cfg


def _int(cfg: dict, key: str, minimum: int, label: str | None = None) -> None:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            cfg[key] = value = int(value)
        else:
            raise ConfigError(label or key, f"must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(label or key, f"must be an integer >= {minimum}, got {value!r}")


def _abs_path(cfg: dict, key: str, optional: bool = False) -> None:
    value = cfg[key]
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(key, f"must be an absolute path, got {value!r}")
    cfg[key] = os.path.normpath(value)


def parse_owner(value) -> tuple[int, int, int | None]:
    import grp
    import pwd
    if isinstance(value, dict):
        parts = [value.get("uid"), value.get("gid"), value.get("mode")]
    elif isinstance(value, str):
        parts = value.split(":")
    else:
        raise ConfigError("db_owner", f"must be 'uid:gid' or 'uid:gid:mode', got {value!r}")
    if len(parts) not in (2, 3) or any(p in (None, "") for p in parts[:2]):
        raise ConfigError("db_owner", f"must be 'uid:gid' or 'uid:gid:mode', got {value!r}")

    def ident(part, lookup, what):
        if isinstance(part, int) or str(part).isdigit():
            return int(part)
        try:
            return lookup(str(part))
        except KeyError as exc:
            raise ConfigError("db_owner", f"unknown {what} {part!r}") from exc

    uid = ident(parts[0], lambda n: pwd.getpwnam(n).pw_uid, "user")
    gid = ident(parts[1], lambda n: grp.getgrnam(n).gr_gid, "group")
    mode = None
    if len(parts) == 3 and parts[2] not in (None, ""):
        try:
            mode = int(str(parts[2]), 8)
        except ValueError as exc:
            raise ConfigError("db_owner", f"mode must be octal like 0640, got {parts[2]!r}") from exc
        if mode & ~0o7777:
            raise ConfigError("db_owner", f"mode out of range: {parts[2]!r}")
    return uid, gid, mode


def validate_config(cfg: dict) -> None:
    if cfg["engine"] not in ("sqlite", "postgres"):
        raise ConfigError("engine", f"must be sqlite or postgres, got {cfg['engine']!r}")
    if cfg["engine"] == "postgres":
        pg = cfg["postgres"]
        keys = {"project", "service", "stanza", "repo_dir"}  # and project_dir (restore needs it)
        if not isinstance(pg, dict) or not keys <= set(pg) <= keys | {"project_dir"}:
            raise ConfigError("postgres", f"must be an object with the keys {', '.join(sorted(keys))} "
                                          f"(and project_dir) when engine is postgres, got {pg!r}")
        pg.setdefault("project_dir", None)
        if pg["project_dir"] is not None and (not isinstance(pg["project_dir"], str)
                                              or not pg["project_dir"].startswith("/")):
            raise ConfigError("postgres.project_dir", f"must be an absolute path, got {pg['project_dir']!r}")
        for key in ("project", "service", "stanza"):
            if not isinstance(pg[key], str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", pg[key]):
                raise ConfigError(f"postgres.{key}", f"must be a lower-case name, got {pg[key]!r}")
        if not isinstance(pg["repo_dir"], str) or not pg["repo_dir"].startswith("/"):
            raise ConfigError("postgres.repo_dir", f"must be an absolute path, got {pg['repo_dir']!r}")
    if cfg["database"] is not None:
        _abs_path(cfg, "database")
        if cfg["volume"] is not None:
            raise ConfigError("volume", "set either 'database' or 'volume' + 'database_name', not both")
    if cfg["volume"] is not None:
        if not isinstance(cfg["volume"], str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cfg["volume"]):
            raise ConfigError("volume", f"must be a Docker volume name, got {cfg['volume']!r}")
        name = cfg["database_name"]
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ConfigError("database_name", f"must be a file name inside the volume when 'volume' is set, got {name!r}")
    _abs_path(cfg, "backup_dir")
    _abs_path(cfg, "state_dir")
    _abs_path(cfg, "textfile_dir", optional=True)
    if cfg["releases_dir"] == "":
        cfg["releases_dir"] = None  # "" = no release history
    _abs_path(cfg, "releases_dir", optional=True)
    _int(cfg, "lock_ttl_seconds", 1)
    _int(cfg, "busy_timeout_ms", 0)
    if cfg["compression"] not in ("auto", "zstd", "gzip"):
        raise ConfigError("compression", f"must be one of auto, zstd, gzip; got {cfg['compression']!r}")
    retention = cfg["retention"]
    if not isinstance(retention, dict):
        raise ConfigError("retention", f"must be an object like {{\"daily\": 7, \"weekly\": 4, \"monthly\": 6}}, got {retention!r}")
    for tier in list(retention):
        if tier not in ("daily", "weekly", "monthly"):
            raise ConfigError(f"retention.{tier}", "unknown tier (known: daily, weekly, monthly)")
        holder = {"v": retention[tier]}
        _int(holder, "v", 0, label=f"retention.{tier}")
        retention[tier] = holder["v"]
    for key in ("stop_command", "start_command"):
        value = cfg[key]
        if value is None:
            continue
        if (not isinstance(value, list) or not value
                or not all(isinstance(x, str) and x for x in value)):
            raise ConfigError(key, f"must be a non-empty list of strings (argv), got {value!r}")
    offsite = cfg["offsite"]
    if offsite is not None:
        if not isinstance(offsite, dict) or len(offsite) != 1 or not set(offsite) <= {"path", "rsync"}:
            raise ConfigError("offsite", f"must be {{\"path\": \"/mnt/offsite\"}} or {{\"rsync\": \"user@host:/dir\"}}, got {offsite!r}")
        if "path" in offsite and (not isinstance(offsite["path"], str) or not offsite["path"].startswith("/")):
            raise ConfigError("offsite.path", f"must be an absolute path, got {offsite['path']!r}")
        if "rsync" in offsite and (not isinstance(offsite["rsync"], str) or ":" not in offsite["rsync"]
                                   or offsite["rsync"].startswith("-")):
            raise ConfigError("offsite.rsync", f"must look like user@host:/dir, got {offsite['rsync']!r}")
    if cfg["db_owner"] is not None:
        parse_owner(cfg["db_owner"])
    if cfg["database"]:
        check_backup_dir_outside(cfg, os.path.dirname(cfg["database"]))


def check_backup_dir_outside(cfg: dict, db_dir: str) -> None:
    bdir = os.path.realpath(cfg["backup_dir"])
    ddir = os.path.realpath(db_dir)
    if bdir == ddir or bdir.startswith(ddir.rstrip("/") + "/"):
        raise ConfigError("backup_dir", f"{cfg['backup_dir']} is inside the database's directory {db_dir} "
                                        "(the Docker volume); backups must live outside it")


def compression_method(cfg: dict) -> str:
    have_zstd = shutil.which("zstd") is not None
    if cfg["compression"] == "zstd" and not have_zstd:
        raise ConfigError("compression", "'zstd' requested but the zstd command is not installed")
    if cfg["compression"] == "auto":
        return "zstd" if have_zstd else "gzip"
    return cfg["compression"]


def resolve_database(cfg: dict) -> str:
    """The live database path. Raises MissingDatabase when there is none (yet)."""
    if cfg["database"]:
        path = cfg["database"]
    elif cfg["volume"]:
        if shutil.which("docker") is None:
            raise ToolError("'volume' is set but the docker command is not installed")
        proc = subprocess.run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", cfg["volume"]],
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            err = one_line(proc.stderr)
            if "no such volume" in err.lower():
                raise MissingDatabase(f"no database: Docker volume {cfg['volume']} does not exist")
            raise ToolError(f"docker volume inspect {cfg['volume']} failed: {err}")
        mountpoint = proc.stdout.strip()
        if not mountpoint.startswith("/"):
            raise ToolError(f"docker volume inspect {cfg['volume']} returned no mountpoint")
        path = os.path.join(mountpoint, cfg["database_name"])
        check_backup_dir_outside(cfg, mountpoint)
    else:
        raise ConfigError("database", "not set: set 'database' (path) or 'volume' + 'database_name'")
    if not os.path.isfile(path):
        raise MissingDatabase(f"no database: {path} does not exist", path=path)
    return path


# --------------------------------------------------------------------------- maintenance lock


def lock_path(cfg: dict) -> str:
    return os.path.join(cfg["state_dir"], "maintenance.lock")


def read_lock(cfg: dict) -> dict | None:
    try:
        with open(lock_path(cfg), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError:
        return {"owner": "?", "host": "?", "play": "?", "since": "?", "unreadable": True}
    return record


def lock_state(record: dict | None, at: float | None = None) -> str:
    if record is None:
        return "free"
    if record.get("unreadable"):
        return "stale"
    expires = record.get("expires_epoch")
    if not isinstance(expires, (int, float)):
        return "stale"
    return "stale" if (at or now()) >= expires else "held"


def token_id(token: str) -> str:
    """The non-secret id of a lock: the first 12 hex characters of sha256(token). Shown by
    `lock status`, recorded in the migration journal; the token itself is never shown again."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def lock_record_id(record: dict | None) -> str | None:
    if not record:
        return None
    if isinstance(record.get("id"), str) and record["id"]:
        return record["id"]
    if isinstance(record.get("token"), str) and record["token"]:
        return token_id(record["token"])  # a record written by an older version of the tool
    return None


def public_lock(record: dict | None) -> dict | None:
    """The owner record without its token (tokens are only printed to whoever acquires)."""
    if record is None:
        return None
    public = {k: v for k, v in record.items() if k != "token"}
    if lock_record_id(record):
        public["id"] = lock_record_id(record)
    return public


def holder_text(record: dict) -> str:
    text = (f"{record.get('owner', '?')}@{record.get('host', '?')} ({record.get('play', '?')}) "
            f"since {record.get('since', '?')}")
    if record.get("user"):
        text += f", user {record['user']}"
    if record.get("controller_pid") not in (None, ""):
        text += f", controller pid {record['controller_pid']}"
    return text


def default_user() -> str:
    """USER from the environment, else the login name (os.getlogin, else the uid's passwd entry)."""
    if os.environ.get("USER"):
        return os.environ["USER"]
    with contextlib.suppress(OSError):
        name = os.getlogin()
        if name:
            return name
    with contextlib.suppress(Exception):
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    return f"uid {os.getuid()}"


def new_lock_record(owner: str, host: str, play: str, reason: str | None, ttl: int,
                    user: str | None = None, controller_pid: int | None = None) -> dict:
    t = now()
    token = secrets.token_hex(16)
    return {
        "token": token, "id": token_id(token),
        "owner": owner, "host": host, "play": play, "pid": os.getpid(),
        "user": user or default_user(), "controller_pid": controller_pid,
        "reason": reason, "since": iso(t), "since_epoch": round(t, 3),
        "ttl_seconds": ttl, "expires_at": iso(t + ttl), "expires_epoch": round(t + ttl, 3),
    }


def write_lock_temp(cfg: dict, record: dict) -> str:
    """The record in a new 0600 temp file beside maintenance.lock (fsynced); returns its path."""
    tmp = os.path.join(cfg["state_dir"], f".maintenance.lock.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        remove_quietly(tmp)
        raise
    return tmp


def read_lock_file(cfg: dict) -> tuple[dict | None, tuple[int, int] | None]:
    """The lock record and the (dev, inode) of the file it was read from (None, None when free)."""
    try:
        fd = os.open(lock_path(cfg), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None, None
    try:
        st = os.fstat(fd)
        with os.fdopen(os.dup(fd), encoding="utf-8") as fh:
            text = fh.read()
    finally:
        os.close(fd)
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError:
        record = {"owner": "?", "host": "?", "play": "?", "since": "?", "unreadable": True}
    return record, (st.st_dev, st.st_ino)


def unlink_lock_if_same(cfg: dict, ident: tuple[int, int]) -> bool:
    """Remove maintenance.lock only if it is still the file that was read (same inode)."""
    path = lock_path(cfg)
    try:
        cur = os.lstat(path)
    except FileNotFoundError:
        return False
    if (cur.st_dev, cur.st_ino) != ident:
        return False
    os.unlink(path)
    fsync_path(cfg["state_dir"])
    return True


def stale_text(record: dict) -> str:
    what = "unreadable lock file" if record.get("unreadable") else \
        f"held by {holder_text(record)}, expired {record.get('expires_at', '?')} (ttl {record.get('ttl_seconds', '?')}s)"
    return (f"maintenance lock is STALE: {what}; it is never taken over automatically. "
            f"If that run is really gone, clear it with: {UNLOCK_HINT}")


def lock_error(record: dict) -> ToolError:
    if lock_state(record) == "stale":
        return ToolError(stale_text(record), EXIT_STALE, lock=public_lock(record), state="stale")
    reason = f", reason: {record['reason']}" if record.get("reason") else ""
    return ToolError(f"maintenance lock held by {holder_text(record)} (pid {record.get('pid', '?')}{reason}); "
                     f"expires {record.get('expires_at', '?')}",
                     EXIT_LOCKED, lock=public_lock(record), state="held")


def try_acquire(cfg: dict, owner: str, host: str, play: str, reason: str | None, ttl: int,
                user: str | None = None, controller_pid: int | None = None) -> dict | None:
    """One attempt: temp file + fsync + os.link (fails if the lock exists). None when taken."""
    ensure_dir(cfg["state_dir"])
    record = new_lock_record(owner, host, play, reason, ttl, user, controller_pid)
    tmp = write_lock_temp(cfg, record)
    try:
        try:
            os.link(tmp, lock_path(cfg))
        except FileExistsError:
            return None
    finally:
        remove_quietly(tmp)
    fsync_path(cfg["state_dir"])
    return record


def acquire_lock(cfg: dict, owner: str, host: str, play: str, reason: str | None,
                 ttl: int, wait: float = 0.0, user: str | None = None, controller_pid: int | None = None) -> dict:
    deadline = now() + max(0.0, wait)
    while True:
        record = try_acquire(cfg, owner, host, play, reason, ttl, user, controller_pid)
        if record is not None:
            LOG.info("lock: acquired by %s ttl %ss%s", holder_text(record), ttl, f" reason: {reason}" if reason else "")
            return record
        current = read_lock(cfg)
        if current is None:
            continue  # released between our link and our read: try again at once
        if now() >= deadline:
            raise lock_error(current)
        time.sleep(min(0.25, max(0.01, deadline - now())))


def token_matches(record: dict | None, token: str | None) -> bool:
    return bool(record and token and isinstance(record.get("token"), str)
                and secrets.compare_digest(record["token"], token))


def release_lock(cfg: dict, token: str) -> str:
    """'released' | 'free'. Raises ToolError(EXIT_LOCKED) when the token is not the holder's."""
    record, ident = read_lock_file(cfg)
    if record is None:
        return "free"
    if not token_matches(record, token):
        raise ToolError(f"not released: the maintenance lock is held by {holder_text(record)} "
                        "and the token given is not its token", EXIT_LOCKED, lock=public_lock(record))
    unlink_lock_if_same(cfg, ident)
    fsync_path(cfg["state_dir"])
    LOG.info("lock: released by its holder %s", holder_text(record))
    return "released"


def who_am_i() -> str:
    for var in ("SUDO_USER", "LOGNAME", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return f"uid {os.getuid()}"


# --------------------------------------------------------------------------- jobs lock + status


@contextlib.contextmanager
def jobs_lock(cfg: dict, job: str, wait: float):
    ensure_dir(cfg["state_dir"])
    path = os.path.join(cfg["state_dir"], "jobs.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = now() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if now() >= deadline:
                    try:
                        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
                        who = f"{info.get('job', '?')} pid {info.get('pid', '?')} since {info.get('since', '?')}"
                    except ValueError:
                        who = "unknown job"
                    raise Skip(f"skipped: another moneytracker-db job is running ({who})") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"job": job, "pid": os.getpid(), "since": iso(now())}).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def status_path(cfg: dict) -> str:
    return os.path.join(cfg["state_dir"], "status.json")


def load_status(cfg: dict) -> dict:
    try:
        with open(status_path(cfg), encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, dict) and isinstance(data.get("jobs"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"jobs": {}}


def record_job(cfg: dict, job: str, result: str, message: str, started: float, **extra) -> None:
    """Record a job run in state_dir/status.json (atomic) and refresh the textfile metrics.
    Never lets a bookkeeping problem hide the job's own result."""
    try:
        ensure_dir(cfg["state_dir"])
        fd = os.open(os.path.join(cfg["state_dir"], "status.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = load_status(cfg)
            finished = now()
            entry = data["jobs"].get(job, {})
            entry.update({"last_run": iso(started), "last_run_epoch": round(started, 3),
                          "finished_epoch": round(finished, 3),
                          "duration_seconds": round(finished - started, 3),
                          "result": result, "message": one_line(message)[:500]})
            if result == "ok":
                entry["last_success"] = iso(started)
                entry["last_success_epoch"] = round(started, 3)
            entry.update(extra)
            data["jobs"][job] = entry
            data["tool_version"] = VERSION
            atomic_write(status_path(cfg), (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), 0o644)
        finally:
            os.close(fd)
    except OSError as exc:
        LOG.warning("status: could not record %s result in %s: %s", job, status_path(cfg), exc)
    refresh_textfile(cfg)


# --------------------------------------------------------------------------- backups inventory


@dataclasses.dataclass
class Backup:
    path: str
    name: str
    ts: float
    seq: int
    compression: str
    manifest_path: str
    manifest: dict | None
    size: int
    verified: bool
    problem: str | None = None

    @property
    def key(self) -> str:
        return self.name


def scan_backups(backup_dir: str) -> list[Backup]:
    """Files named like backups, oldest first. Only those with a valid manifest are verified."""
    found: list[Backup] = []
    try:
        names = os.listdir(backup_dir)
    except FileNotFoundError:
        return []
    for name in names:
        m = BACKUP_RE.match(name)
        path = os.path.join(backup_dir, name)
        if not m or not os.path.isfile(path):
            continue
        manifest_path = path + MANIFEST_SUFFIX
        manifest, problem = None, None
        try:
            with open(manifest_path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            problem = "no manifest"
        except (OSError, ValueError) as exc:
            problem = f"unreadable manifest: {exc}"
        verified = bool(manifest and manifest.get("verified") is True and manifest.get("backup_file") == name)
        if manifest is not None and not verified and problem is None:
            problem = "manifest does not mark it verified"
        ts = parse_stamp(m.group(1))
        if isinstance(manifest, dict) and isinstance(manifest.get("started_epoch"), (int, float)) \
                and abs(manifest["started_epoch"] - ts) < 1.5:
            ts = float(manifest["started_epoch"])  # sub-second precision from the manifest
        found.append(Backup(path=path, name=name, ts=ts, seq=int(m.group(2) or 0),
                            compression=METHOD_OF_EXT[m.group(3)], manifest_path=manifest_path,
                            manifest=manifest if isinstance(manifest, dict) else None,
                            size=os.path.getsize(path), verified=verified, problem=problem))
    found.sort(key=lambda b: (b.ts, b.seq))
    return found


def newest_verified(backups: list[Backup]) -> Backup | None:
    good = [b for b in backups if b.verified]
    return good[-1] if good else None


def quarantine_attempts(backup_dir: str) -> list[dict]:
    qdir = os.path.join(backup_dir, "quarantine")
    attempts = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(qdir):
            if name.endswith(".report.json"):
                try:
                    with open(os.path.join(qdir, name), encoding="utf-8") as fh:
                        report = json.load(fh)
                    attempts.append({"name": name, "ts": float(report["started_epoch"]),
                                     "reason": report.get("reason")})
                except (OSError, ValueError, KeyError, TypeError):
                    continue
    return sorted(attempts, key=lambda a: a["ts"])


# --------------------------------------------------------------------------- retention (pure)


@dataclasses.dataclass
class RetentionDecision:
    keep: list            # [(item, [reasons])] newest first
    delete: list          # [item] newest first
    blocked: str | None   # why nothing is deleted, if so


def select_retention(items, policy: dict) -> RetentionDecision:
    """Pure retention selection. items: objects with .ts (epoch seconds, UTC) and .verified
    (bool); unverified items stand for failed backup attempts and are never deleted here.
    policy: {"daily": N, "weekly": N, "monthly": N}. A backup kept by any tier stays; the newest
    verified backup always stays; when the newest attempt failed nothing is deleted."""
    ordered = sorted(items, key=lambda i: (i.ts, getattr(i, "seq", 0)), reverse=True)
    verified = [i for i in ordered if i.verified]
    reasons: dict[int, list[str]] = {id(i): [] for i in verified}
    if verified:
        reasons[id(verified[0])].append("newest")

    def day(ts):
        return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()

    def week(ts):
        y, w, _weekday = dt.datetime.fromtimestamp(ts, dt.UTC).isocalendar()
        return f"{y}-W{w:02d}"

    def month(ts):
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m")

    for tier, bucket in (("daily", day), ("weekly", week), ("monthly", month)):
        limit = int(policy.get(tier, 0))
        seen: set[str] = set()
        for item in verified:
            period = bucket(item.ts)
            if period in seen:
                continue
            if len(seen) >= limit:
                break
            seen.add(period)
            reasons[id(item)].append(tier)

    blocked = None
    if ordered and not ordered[0].verified:
        blocked = "the newest backup attempt failed: nothing is pruned until a backup succeeds"
    elif not verified:
        blocked = "there is no verified backup"
    if blocked:
        keep = [(i, reasons[id(i)] or ["prune blocked"]) for i in verified]
        delete = []
    else:
        keep = [(i, reasons[id(i)]) for i in verified if reasons[id(i)]]
        delete = [i for i in verified if not reasons[id(i)]]
    return RetentionDecision(keep=keep, delete=delete, blocked=blocked)


@dataclasses.dataclass
class FailedAttempt:
    """A backup attempt that produced no verified backup (for select_retention)."""
    ts: float
    verified: bool = False
    seq: int = 1 << 30
    name: str = "(failed attempt)"


def backup_items_for_retention(cfg: dict, backups: list[Backup]) -> list:
    """Verified backups plus failed attempts (status record + quarantine reports)."""
    items: list = [b for b in backups if b.verified]
    rec = load_status(cfg)["jobs"].get("backup")
    if rec and rec.get("result") == "failed" and isinstance(rec.get("last_run_epoch"), (int, float)):
        items.append(FailedAttempt(ts=rec["last_run_epoch"]))
    items += [FailedAttempt(ts=a["ts"]) for a in quarantine_attempts(cfg["backup_dir"])]
    return items


def backup_ref(value: str) -> str:
    path = os.path.normpath(value)
    return path[: -len(MANIFEST_SUFFIX)] if path.endswith(MANIFEST_SUFFIX) else path


def protected_backups(cfg: dict) -> tuple[dict[str, list[str]], list[str]]:
    """Backups that must never be pruned: {path: ["release <dir>", "migration <id>", ...]}, and the
    problems met while reading (an unreadable release.json might name one: then prune stops).
    - every <releases_dir>/*/release.json: its pre_migration_backup and restored_backup values;
    - the unfinished migration journal: any of its top-level values that is a path."""
    refs: dict[str, list[str]] = {}
    problems: list[str] = []

    def add(value, reason):
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v.startswith("/"):
                reasons = refs.setdefault(backup_ref(v), [])
                if reason not in reasons:
                    reasons.append(reason)

    rdir = cfg.get("releases_dir")
    if rdir:
        names: list[str] = []
        try:
            names = sorted(os.listdir(rdir))
        except FileNotFoundError:
            pass  # no release recorded yet
        except OSError as exc:
            problems.append(f"cannot read the release history {rdir}: {exc.strerror or exc}")
        for name in names:
            path = os.path.join(rdir, name, "release.json")
            try:
                with open(path, encoding="utf-8") as fh:
                    release = json.load(fh)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except (OSError, ValueError) as exc:
                problems.append(f"{path} is unreadable ({one_line(exc)})")
                continue
            if not isinstance(release, dict):
                problems.append(f"{path} is not a JSON object")
                continue
            for key in ("pre_migration_backup", "restored_backup"):
                add(release.get(key), f"release {name}")
    try:
        journal = read_journal(cfg)
    except ToolError as exc:
        problems.append(exc.message)
        journal = None
    if journal:
        for value in journal.values():
            add(value, f"migration {journal.get('id')}")
    return refs, problems


def retention_decision(cfg: dict, backups: list[Backup]) -> RetentionDecision:
    """select_retention, then: a backup named by a kept release or by the unfinished migration is
    kept (with that reason); nothing at all is pruned when the release history cannot be read."""
    decision = select_retention(backup_items_for_retention(cfg, backups), cfg["retention"])
    refs, problems = protected_backups(cfg)
    keep = []
    for item, reasons in decision.keep:
        extra = refs.get(backup_ref(item.path), [])
        merged = [r for r in reasons if not (extra and r == "prune blocked")] + extra
        keep.append((item, merged))
    delete = []
    for item in decision.delete:
        extra = refs.get(backup_ref(item.path))
        if extra:
            keep.append((item, list(extra)))
        else:
            delete.append(item)
    blocked = decision.blocked
    if problems and not blocked:
        blocked = (f"{'; '.join(problems)}: nothing is pruned until the release history and the migration "
                   "journal can be read (they may name backups a rollback needs)")
        keep += [(item, ["prune blocked"]) for item in delete]
        delete = []
    keep.sort(key=lambda pair: (pair[0].ts, getattr(pair[0], "seq", 0)), reverse=True)
    return RetentionDecision(keep=keep, delete=delete, blocked=blocked)


# --------------------------------------------------------------------------- sqlite inspection


def qident(name: str) -> str:
    """An SQL identifier, always double-quoted with embedded quotes doubled (never pasted raw)."""
    return '"' + str(name).replace('"', '""') + '"'


def id_columns(con: sqlite3.Connection, tables: list[str]) -> dict[str, str]:
    """{table: column} for tables whose primary key is one INTEGER column named id (any case).
    Table names are bound as parameters (pragma_table_info), never pasted into SQL."""
    found = {}
    for table in tables:
        try:
            cols = con.execute("SELECT name, type, pk FROM pragma_table_info(?)", (table,)).fetchall()
        except sqlite3.DatabaseError:
            continue
        pks = [c for c in cols if c[2]]
        if len(pks) == 1 and str(pks[0][0]).lower() == "id" and str(pks[0][1]).strip().upper() == "INTEGER":
            found[table] = pks[0][0]
    return found


def inspect_copy(path: str) -> dict:
    """integrity_check + foreign_key_check + facts, on a COPY (opened immutable, read-only)."""
    report: dict = {"integrity_check": [], "foreign_key_check": [], "ok": False}
    con = None
    try:
        con = sqlite3.connect(sqlite_uri(path, mode="ro", immutable="1"), uri=True)
        report["page_size"] = con.execute("PRAGMA page_size").fetchone()[0]
        report["page_count"] = con.execute("PRAGMA page_count").fetchone()[0]
        report["user_version"] = con.execute("PRAGMA user_version").fetchone()[0]
        report["integrity_check"] = [r[0] for r in con.execute("PRAGMA integrity_check")]
        report["foreign_key_check"] = [
            {"table": r[0], "rowid": r[1], "parent": r[2], "fkid": r[3]}
            for r in con.execute("PRAGMA foreign_key_check").fetchmany(100)]
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        counts = {}
        for table in tables:
            try:
                counts[table] = con.execute(f'SELECT count(*) FROM "{table.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
            except sqlite3.DatabaseError:
                counts[table] = None
        report["row_counts"] = counts
        report["max_ids"] = {}
        for table, column in id_columns(con, tables).items():
            with contextlib.suppress(sqlite3.DatabaseError):
                report["max_ids"][table] = con.execute(
                    f"SELECT max({qident(column)}) FROM {qident(table)}").fetchone()[0]
        alembic = None
        if "alembic_version" in tables:
            rows = [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
            alembic = rows[0] if len(rows) == 1 else rows
        report["alembic_version"] = alembic
        report["ok"] = report["integrity_check"] == ["ok"] and not report["foreign_key_check"]
    except sqlite3.DatabaseError as exc:
        report["integrity_check"] = report["integrity_check"] or [f"error: {exc}"]
        report["error"] = str(exc)
    finally:
        if con is not None:
            con.close()
    return report


def problem_lines(rows: list) -> list[str]:
    """integrity_check / quick_check rows as one problem per line. SQLite may put many problems
    into one row, separated by newlines, under a '*** in database main ***' header."""
    lines = []
    for row in rows:
        for line in str(row).splitlines():
            line = line.strip()
            if line and not (line.startswith("*** in database") and line.endswith("***")):
                lines.append(line)
    return lines


def first_problems(rows: list, n: int = 2, width: int = 200) -> str:
    """'<count> problem(s), first: a; b' kept to one short line for stderr and syslog."""
    lines = problem_lines(rows) or ["?"]
    shown = "; ".join(line if len(line) <= width else line[: width - 3] + "..." for line in lines[:n])
    return f"{len(lines)} problem(s), first: {shown}"


def problem_summary(report: dict) -> str:
    if report.get("error") and report.get("integrity_check") in ([], [f"error: {report['error']}"]):
        return f"sqlite error: {report['error']}"
    parts = []
    if report.get("integrity_check") != ["ok"]:
        parts.append(f"integrity_check: {first_problems(report.get('integrity_check') or ['?'])}")
    if report.get("foreign_key_check"):
        fk = report["foreign_key_check"][0]
        parts.append(f"foreign_key_check: {len(report['foreign_key_check'])} violation(s), first: "
                     f"{fk['table']} rowid {fk['rowid']} -> {fk['parent']}")
    return "; ".join(parts) or "unknown problem"


# --------------------------------------------------------------------------- compression


def compress_file(src: str, dst: str, method: str) -> None:
    if method == "zstd":
        proc = subprocess.run(["zstd", "-q", "-f", "-3", src, "-o", dst],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            err = one_line(proc.stderr) or f"exit {proc.returncode}"
            raise OSError(errno.ENOSPC if "space" in err.lower() else errno.EIO, f"zstd failed: {err}")
    else:
        with open(src, "rb") as fin, open(dst, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            shutil.copyfileobj(fin, gz, CHUNK)
    os.chmod(dst, 0o600)  # money data: readable by root only (backup_dir is 0700 too)
    fsync_path(dst)


def iter_decompressed(path: str, method: str):
    if method == "zstd":
        if shutil.which("zstd") is None:
            raise ToolError(f"{path} is zstd-compressed but the zstd command is not installed (apt-get install zstd)")
        proc = subprocess.Popen(["zstd", "-d", "-c", "-q", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        complete = False
        try:
            while True:
                block = proc.stdout.read(CHUNK)
                if not block:
                    break
                yield block
            complete = True
        finally:
            proc.stdout.close()
            if not complete and proc.poll() is None:
                proc.kill()
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
            rc = proc.wait()
        if rc != 0:
            raise ToolError(f"cannot decompress {path}: zstd: {one_line(err) or f'exit {rc}'}")
    else:
        try:
            with gzip.open(path, "rb") as fh:
                while True:
                    block = fh.read(CHUNK)
                    if not block:
                        break
                    yield block
        except (OSError, EOFError, zlib.error) as exc:
            if is_disk_full(exc):
                raise
            raise ToolError(f"cannot decompress {path}: {exc}") from exc


def create_private(path: str) -> tuple[int, tuple[int, int]]:
    """A new file, 0600, never through a symlink (O_EXCL + O_NOFOLLOW): (fd, (dev, inode))."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    return fd, (st.st_dev, st.st_ino)


def decompress(path: str, method: str, dst: str | None, info: dict | None = None) -> tuple[str, int]:
    """Decompress (to dst, fsynced, when given) and return sha256 + size of the raw bytes.
    dst is created 0600 without following symlinks; info["ident"] gets its (dev, inode) and
    info["fd"] a descriptor of it that the caller must close."""
    digest = hashlib.sha256()
    size = 0
    out = None
    if dst:
        fd, ident = create_private(dst)
        if info is not None:
            info["ident"] = ident
            info["fd"] = os.dup(fd)
        out = os.fdopen(fd, "wb")
    try:
        for block in iter_decompressed(path, method):
            digest.update(block)
            size += len(block)
            if out:
                out.write(block)
        if out:
            out.flush()
            os.fsync(out.fileno())
    finally:
        if out:
            out.close()
    return digest.hexdigest(), size


# --------------------------------------------------------------------------- commands helpers


@dataclasses.dataclass
class Result:
    code: int
    data: dict
    text: str = ""


def run_hook(argv: list[str], what: str) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError as exc:
        raise ToolError(f"{what} failed: command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{what} timed out after {COMMAND_TIMEOUT_SECONDS}s: {shlex.join(argv)}") from exc
    if proc.returncode != 0:
        tail = one_line(proc.stderr or proc.stdout)[-300:]
        raise ToolError(f"{what} failed (exit {proc.returncode}): {shlex.join(argv)}: {tail}")


def lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)
    if shutil.which("ionice"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["ionice", "-c3", "-p", str(os.getpid())], capture_output=True, timeout=10, check=False)


def skip_line(record: dict) -> str:
    line = f"skipped: maintenance lock held by {holder_text(record)}"
    if lock_state(record) == "stale":
        line += f" [STALE since {record.get('expires_at', '?')}; clear it with: {UNLOCK_HINT}]"
    return line


@contextlib.contextmanager
def job_guard(cfg: dict, args, job: str):
    """Cron-facing guard: skip (75) while the maintenance lock is held unless --lock-token is the
    holder's token; never overlap with another job (flock on state_dir/jobs.lock)."""
    token = getattr(args, "lock_token", None)

    def check_maintenance() -> bool:
        record = read_lock(cfg)
        if record is None:
            if token:
                raise ToolError("--lock-token given but the maintenance lock is not held "
                                "(released or broken?); refusing to run as if under it", EXIT_LOCKED)
            return False
        if token_matches(record, token):
            return True
        line = skip_line(record)
        if token:
            line += " (the --lock-token given is not the holder's)"
        raise Skip(line, lock=public_lock(record))

    under_lock = check_maintenance()
    wait = getattr(args, "jobs_wait", None)
    if wait is None:
        wait = 600.0 if under_lock else 0.0
    with jobs_lock(cfg, job, wait):
        check_maintenance()  # it may have been taken while we waited for jobs.lock
        yield under_lock


def run_job(cfg: dict, job: str, started: float, body):
    """Run body() -> Result, recording ok/failed/skipped for job in status.json."""
    try:
        result = body()
    except Skip as exc:
        record_job(cfg, job, "skipped", exc.message, started)
        raise
    except ToolError as exc:
        if exc.code != EXIT_USAGE:
            record_job(cfg, job, "failed", exc.message, started)
        raise
    except Exception as exc:
        record_job(cfg, job, "failed", f"internal error: {exc!r}", started)
        raise
    status = result.data.pop("_status", "ok" if result.code == EXIT_OK else "failed")
    record_job(cfg, job, status, result.data.get("message", ""), started)
    return result


# --------------------------------------------------------------------------- PostgreSQL (engine: postgres)
# pgBackRest runs inside the project's PostgreSQL container (its image ships it; the container's
# environment carries its settings: PGBACKREST_STANZA, repository path, retention), as postgres,
# through `docker exec`. Its repository is a host directory bind-mounted into the container
# (postgres.repo_dir). WAL is archived continuously by PostgreSQL's archive_command; a backup is
# a full backup followed by `pgbackrest verify` (the repository's checksums, WAL included): only
# then does it count. What the metrics need is kept in state_dir/pgbackrest.json.

PG_BACKUP_TIMEOUT_SECONDS = 6 * 3600


def pg_state_path(cfg: dict) -> str:
    return os.path.join(cfg["state_dir"], "pgbackrest.json")


def pg_container(cfg: dict) -> str:
    """The running PostgreSQL container: the Compose service's, or under Docker Swarm
    (app_orchestrator swarm) the task of the stack's service on this node."""
    pg = cfg["postgres"]
    filters = (["--filter", f"label=com.docker.compose.project={pg['project']}",
                "--filter", f"label=com.docker.compose.service={pg['service']}"],
               ["--filter", f"label=com.docker.swarm.service.name={pg['project']}_{pg['service']}"])
    err = ""
    for labels in filters:
        argv = ["docker", "ps", "-q", *labels, "--filter", "status=running"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError(f"cannot ask Docker for the PostgreSQL container: {exc}") from exc
        ids = proc.stdout.split()
        if proc.returncode == 0 and ids:
            return ids[0]
        err = err or proc.stderr.strip()
    raise ToolError(f"no running PostgreSQL container (compose project {pg['project']}, service "
                    f"{pg['service']}; or the Swarm service {pg['project']}_{pg['service']} on this node)"
                    f"{': ' + one_line(err)[-200:] if err else ''}")


def pgbackrest(cfg: dict, *args: str, timeout: float = COMMAND_TIMEOUT_SECONDS,
               container: str | None = None) -> str:
    """Run pgbackrest in the server's container as postgres; its stdout, or ToolError naming the
    command and the end of its output."""
    argv = ["docker", "exec", "-u", "postgres", container or pg_container(cfg), "pgbackrest",
            f"--stanza={cfg['postgres']['stanza']}", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"pgbackrest {' '.join(args)} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise ToolError(f"pgbackrest {' '.join(args)}: {exc}") from exc
    if proc.returncode != 0:
        raise ToolError(f"pgbackrest {' '.join(args)} failed (exit {proc.returncode}): "
                        f"{one_line(proc.stderr or proc.stdout)[-600:]}")
    return proc.stdout


def pg_info(cfg: dict, container: str | None = None) -> dict:
    """pgBackRest's `info` of the stanza, reduced to what the tool reports: every backup (oldest
    first) with its label, type, start/stop time, database size and repository size."""
    try:
        data = json.loads(pgbackrest(cfg, "info", "--output=json", container=container))
    except json.JSONDecodeError as exc:
        raise ToolError(f"pgbackrest info printed no JSON: {exc.msg}") from exc
    stanza = next((x for x in data if x.get("name") == cfg["postgres"]["stanza"]), None) if data else None
    if stanza is None:
        raise ToolError(f"pgbackrest knows no stanza {cfg['postgres']['stanza']}")
    backups = [{"label": b["label"], "type": b["type"], "start": b["timestamp"]["start"],
                "stop": b["timestamp"]["stop"], "size": b["info"]["size"],
                "repo_size": b["info"]["repository"].get("delta", b["info"]["repository"].get("size", 0)),
                "error": bool(b.get("error", False))}
               for b in stanza.get("backup", [])]
    archive = (stanza.get("archive") or [{}])[0]
    return {"status": stanza.get("status", {}).get("message", "?"), "backups": backups,
            "wal_min": archive.get("min"), "wal_max": archive.get("max")}


def pg_schema_version(cfg: dict) -> str | None:
    """The Alembic revision of the app's database on the PostgreSQL server (None: no
    alembic_version table yet), read as postgres over the container's socket; ToolError when the
    server cannot be asked (a migration journal must never be settled on a guess)."""
    container = pg_container(cfg)
    argv = ["docker", "exec", "-u", "postgres", container, "sh", "-c",
            'exec psql -X -q -At -v ON_ERROR_STOP=1 -d "$POSTGRES_DB" -c "SELECT version_num FROM alembic_version"']
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"cannot ask PostgreSQL for the schema: {exc}") from exc
    if proc.returncode != 0:
        if 'relation "alembic_version" does not exist' in proc.stderr:
            return None
        raise ToolError(f"cannot ask PostgreSQL for the schema (exit {proc.returncode}): "
                        f"{one_line(proc.stderr or proc.stdout)[-400:]}")
    versions = proc.stdout.split()
    return ",".join(versions) if versions else None


def pg_save_state(cfg: dict, info: dict, verified_label: str | None = None) -> None:
    state = pg_load_state(cfg)
    state.update(info=info, read_at=round(now(), 3))
    if verified_label:
        state.setdefault("verified", [])
        if verified_label not in state["verified"]:
            state["verified"].append(verified_label)
    labels = {b["label"] for b in info["backups"]}
    state["verified"] = [x for x in state.get("verified", []) if x in labels]  # expired ones go
    ensure_dir(cfg["state_dir"])
    atomic_write(pg_state_path(cfg), (json.dumps(state, indent=1, sort_keys=True) + "\n").encode(), 0o644)


def pg_load_state(cfg: dict) -> dict:
    try:
        with open(pg_state_path(cfg), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def pg_verified_backups(cfg: dict) -> list[dict]:
    state = pg_load_state(cfg)
    verified = set(state.get("verified", []))
    return [b for b in (state.get("info") or {}).get("backups", []) if b["label"] in verified and not b["error"]]


def pg_backup(cfg: dict, args, job_started: float) -> Result:
    container = pg_container(cfg)
    label = getattr(args, "label", None)
    t0 = now()
    pgbackrest(cfg, "backup", "--type=full", timeout=PG_BACKUP_TIMEOUT_SECONDS, container=container)
    backup_seconds = now() - t0
    info = pg_info(cfg, container)
    if not info["backups"]:
        raise ToolError("pgbackrest backup succeeded but info lists no backup")
    newest = info["backups"][-1]
    t1 = now()
    try:
        pgbackrest(cfg, "verify", timeout=PG_BACKUP_TIMEOUT_SECONDS, container=container)
    except ToolError as exc:
        pg_save_state(cfg, info)
        raise ToolError(f"backup {newest['label']} was taken but the repository's verification failed: "
                        f"{exc.message}; it does not count as a verified backup") from exc
    verify_seconds = now() - t1
    pg_save_state(cfg, info, verified_label=newest["label"])
    message = (f"backup {newest['label']} ({newest['type']}, database {human_size(newest['size'])}, "
               f"{human_size(newest['repo_size'])} in the repository) taken in {backup_seconds:.1f}s and verified "
               f"(pgbackrest verify) in {verify_seconds:.1f}s" + (f"; label: {label}" if label else ""))
    data = {"ok": True, "engine": "postgres", "backup": newest["label"], "type": newest["type"],
            "time": iso(newest["stop"]), "size": newest["size"], "repo_size": newest["repo_size"],
            "backup_seconds": round(backup_seconds, 3), "verify_seconds": round(verify_seconds, 3),
            "wal_max": info["wal_max"], "message": message}
    return Result(EXIT_OK, data, message)


def pg_check(cfg: dict, args) -> Result:
    """--quick: `pgbackrest check` (the server answers, WAL archiving reaches the repository: it
    switches a WAL segment and waits for it). --full: the same, then `pg_amcheck --all` (amcheck:
    every table's heap and every B-tree index of every database, the extension installed where
    missing) and `pgbackrest verify`."""
    container = pg_container(cfg)
    t0 = now()
    pgbackrest(cfg, "check", container=container)
    what = "pgbackrest check: PostgreSQL answers and its WAL reaches the repository"
    if getattr(args, "full", False):
        argv = ["docker", "exec", "-u", "postgres", container, "pg_amcheck", "--all", "--install-missing",
                "--host=/var/run/postgresql", "--username=postgres"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=PG_BACKUP_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError(f"pg_amcheck: {exc}") from exc
        if proc.returncode != 0:
            raise ToolError(f"pg_amcheck found problems (exit {proc.returncode}): "
                            f"{one_line(proc.stdout + proc.stderr)[-800:]}")
        pgbackrest(cfg, "verify", timeout=PG_BACKUP_TIMEOUT_SECONDS, container=container)
        what += ("; pg_amcheck --all: every table and B-tree index is consistent; pgbackrest verify: every "
                 "backup and WAL file in the repository matches its checksum")
    message = f"{what} ({now() - t0:.1f}s)"
    return Result(EXIT_OK, {"ok": True, "engine": "postgres", "message": message}, message)


def pg_prune(cfg: dict, args) -> Result:
    """pgBackRest's own retention (repo1-retention-full, a count): `expire`, then the info again.
    (pgBackRest also expires after each backup: "expired" names every backup the tool last knew of
    that is gone now.)"""
    container = pg_container(cfg)
    known = {b["label"] for b in (pg_load_state(cfg).get("info") or {}).get("backups", [])}
    if not getattr(args, "dry_run", False):
        pgbackrest(cfg, "expire", container=container)
    info = pg_info(cfg, container)
    pg_save_state(cfg, info)
    removed = sorted(known - {b["label"] for b in info["backups"]})
    message = (f"{'dry run: ' if getattr(args, 'dry_run', False) else ''}pgbackrest expire: "
               f"{len(info['backups'])} backups kept" + (f", expired: {', '.join(removed)}" if removed else ""))
    return Result(EXIT_OK, {"ok": True, "engine": "postgres", "kept": [b["label"] for b in info["backups"]],
                            "expired": removed, "message": message}, message)


def pg_list(cfg: dict, args) -> Result:
    info = pg_info(cfg)
    pg_save_state(cfg, info)
    verified = {b["label"] for b in pg_verified_backups(cfg)}
    lines = [f"{'label':<34} {'type':<5} {'stopped':<21} {'database':>10} {'repository':>10}  verified"]
    for b in info["backups"]:
        lines.append(f"{b['label']:<34} {b['type']:<5} {iso(b['stop']):<21} {human_size(b['size']):>10} "
                     f"{human_size(b['repo_size']):>10}  {'yes' if b['label'] in verified else 'no'}")
    lines.append(f"WAL archived: {info['wal_min'] or '-'} .. {info['wal_max'] or '-'} (status: {info['status']})")
    return Result(EXIT_OK, {"ok": True, "engine": "postgres", **info,
                            "verified": sorted(verified)}, "\n".join(lines))


def pg_target_time(value: str | None) -> tuple[str | None, float | None]:
    """--target-time as PostgreSQL reads it ('2026-12-01 14:17:00.5+00:00') and as a Unix time,
    from ISO 8601 with a time zone; a time without one is refused (it would be read in the
    server's zone)."""
    if not value:
        return None, None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--target-time {value!r} is not an ISO 8601 time (e.g. 2026-12-01T14:17:00Z)") from exc
    if when.tzinfo is None:
        raise UsageError(f"--target-time {value!r} has no time zone: add Z (UTC) or +HH:MM")
    if when.timestamp() > now():
        raise UsageError(f"--target-time {value!r} is in the future")
    return when.astimezone(dt.timezone.utc).isoformat(sep=" "), when.timestamp()


def pg_wait_healthy(container: str, timeout: float) -> None:
    deadline = now() + timeout
    while True:
        proc = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}"
                               "{{end}}", container], capture_output=True, text=True, timeout=60, check=False)
        state = proc.stdout.split()
        if state[:2] == ["running", "healthy"]:
            return
        if not state or state[0] in ("exited", "dead", "restarting") or now() > deadline:
            logs = subprocess.run(["docker", "logs", "--tail", "15", container], capture_output=True, text=True,
                                  timeout=60, check=False)
            raise ToolError(f"PostgreSQL did not come back healthy ({' '.join(state) or 'gone'}): "
                            f"{one_line(logs.stderr + logs.stdout)[-800:]}")
        time.sleep(1)


def pg_restore(cfg: dict, args, started: float) -> Result:
    """Point-in-time recovery with pgBackRest: to the end of the archived WAL (default), to
    --target-time, or to the consistent point of one backup (--backup LABEL). Under the maintenance
    lock: writers stopped, the current WAL archived (pgbackrest check), the server stopped, the
    data directory restored in place (--delta) by a one-off container of the service, the server
    started (it replays WAL to the target, then promotes), writers started."""
    pg = cfg["postgres"]
    if not pg["project_dir"]:
        raise ConfigError("postgres.project_dir", "is needed for a restore (the compose project's directory)")
    target, target_epoch = pg_target_time(getattr(args, "target_time", None))
    label = getattr(args, "backup", None)
    if label and target:
        raise UsageError("give --backup LABEL or --target-time, not both (a time picks its backup itself)")
    verified = pg_verified_backups(cfg)
    if not verified:
        raise ToolError("no verified PostgreSQL backup is known (run moneytracker-db backup, or list)")
    if label and label not in {b["label"] for b in verified}:
        raise UsageError(f"--backup {label!r} is not a verified backup (moneytracker-db list shows them)")
    if target and target_epoch < verified[0]["stop"]:
        raise UsageError(f"--target-time {target} is before the end of the oldest verified backup "
                         f"({iso(verified[0]['stop'])}): no backup can be recovered to it")
    if label:
        chosen = next(b for b in verified if b["label"] == label)
        how = ["--set=" + label, "--type=immediate", "--target-action=promote"]
        to = f"the consistent point of backup {label} (taken {iso(chosen['stop'])})"
    elif target:
        how = ["--type=time", f"--target={target}", "--target-action=promote"]
        to = f"{target} (replaying the archived WAL up to it)"
    else:
        how = []
        to = "the end of the archived WAL (every committed write the server had archived)"
    plan = {"engine": "postgres", "backup": label or ("time " + target if target else "latest"),
            "backup_time": iso(next(b for b in verified if b["label"] == label)["stop"]) if label else (target or "latest"),
            "target": to, "target_time": target, "database": f"postgres: compose project {pg['project']}, service "
            f"{pg['service']}", "database_exists": True, "aside": {},
            "stop_command": cfg["stop_command"], "start_command": cfg["start_command"]}
    if not args.yes:
        lines = ["restore plan (nothing changed; run again with --yes to do it):",
                 f"  to:      {to}", f"  server:  {plan['database']}",
                 f"  stop:    {shlex.join(cfg['stop_command']) if cfg['stop_command'] else '(no stop_command: needs --writers-stopped)'}",
                 "  then:    WAL archived (pgbackrest check), server stopped, data directory restored in place "
                 "(pgbackrest --delta restore), server started (replay, promote)",
                 f"  start:   {shlex.join(cfg['start_command']) if cfg['start_command'] else '(no start_command)'}"]
        lines += restore_lock_line(cfg, args, plan)
        return Result(EXIT_LOCKED, {"ok": False, "confirmation_required": True, "plan": plan,
                                    "message": "confirmation required: re-run with --yes"}, "\n".join(lines))
    require_writers_stop(cfg, args)

    def body() -> Result:
        took_lock = take_restore_lock(cfg, args, f"PostgreSQL restore to {plan['backup']}")
        changed = False
        try:
            jobs_wait = getattr(args, "jobs_wait", None)
            with jobs_lock(cfg, "restore", 600.0 if jobs_wait is None else jobs_wait):
                container = pg_container(cfg)
                if cfg["stop_command"]:
                    run_hook(cfg["stop_command"], "stop_command")
                # Every committed write into the repository first: pgbackrest check switches the WAL
                # segment and waits until it is archived (a restore to the latest then loses nothing).
                pgbackrest(cfg, "check", container=container)
                run_hook(["docker", "stop", container], "stopping PostgreSQL")
                changed = True
                t0 = now()
                compose = ["docker", "compose", "--project-directory", pg["project_dir"], "-p", pg["project"]]
                run_hook(compose + ["run", "--rm", "--no-deps", "-T", "--user", "postgres", "--entrypoint", "pgbackrest",
                                    pg["service"], "--delta", "--log-level-console=warn", *how, "restore"],
                         "pgbackrest restore")
                restore_seconds = now() - t0
                run_hook(["docker", "start", container], "starting PostgreSQL")
                pg_wait_healthy(container, COMMAND_TIMEOUT_SECONDS)
                replay_seconds = now() - t0 - restore_seconds
                # Recovered and promoted: one restart, at which the entrypoint sets the app role's
                # password from its file again (it cannot while a recovery is pending).
                run_hook(["docker", "restart", container], "restarting PostgreSQL after the recovery")
                pg_wait_healthy(container, COMMAND_TIMEOUT_SECONDS)
                if cfg["start_command"]:
                    run_hook(cfg["start_command"], "start_command")
        except ToolError as exc:
            if changed:
                exc.message += ("; the data directory may be partly restored: the state from just before this "
                                "restore is in the repository (restore again without --target-time/--backup "
                                "for the end of the archived WAL)")
            raise
        finally:
            if took_lock:
                with contextlib.suppress(ToolError, OSError):
                    release_lock(cfg, took_lock["token"])
        message = (f"restored PostgreSQL to {to}: pgbackrest restore {restore_seconds:.1f}s, replay and start "
                   f"{replay_seconds:.1f}s")
        LOG.warning("restore: %s", message, extra={"stderr": False})
        return Result(EXIT_OK, {"ok": True, "engine": "postgres", "restored": plan["backup"], "target": to,
                                "target_time": target, "backup_time": plan["backup_time"], "database": plan["database"],
                                "aside": {}, "database_changed": True, "restore_seconds": round(restore_seconds, 3),
                                "replay_seconds": round(replay_seconds, 3), "message": message}, message)

    return run_job(cfg, "restore", started, body)


def pg_snapshot_backups(cfg: dict, t: float) -> dict:
    """The backup part of snapshot() for PostgreSQL, from state_dir/pgbackrest.json (no docker exec:
    status runs often, and must answer when the server is down)."""
    verified = pg_verified_backups(cfg)
    newest = verified[-1] if verified else None
    repo = cfg["postgres"]["repo_dir"]
    fs = {"backup_dir": repo, "filesystem": None, "free_bytes": None}
    if os.path.isdir(repo):
        fs.update(filesystem=mount_point(repo), free_bytes=free_bytes(repo))
    return {
        "newest_backup": None if newest is None else {
            "path": f"pgbackrest:{cfg['postgres']['stanza']}/{newest['label']}", "time": iso(newest["stop"]),
            "epoch": newest["stop"], "age_seconds": round(t - newest["stop"]), "size": newest["repo_size"]},
        "backups_count": len(verified),
        "unverified_files": [],
        "quarantined": 0,
        "backup_fs": fs,
    }


# --------------------------------------------------------------------------- backup


def unique_base(backup_dir: str, ts: float) -> str:
    base = f"moneytracker-{stamp(ts)}"
    existing = set(os.listdir(backup_dir))
    candidate, n = base, 0
    while any(name.startswith(candidate + ".db.") for name in existing):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def clean_tmp(tmp_dir: str, before: float) -> list[str]:
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(tmp_dir):
            path = os.path.join(tmp_dir, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < before:
                    os.unlink(path)
                    removed.append(path)
    return removed


def quarantine_copy(cfg: dict, raw_tmp: str, base: str, report: dict) -> str:
    qdir = os.path.join(cfg["backup_dir"], "quarantine")
    ensure_dir(qdir)
    target, n = os.path.join(qdir, base + ".db"), 0
    while os.path.exists(target) or os.path.exists(target + ".report.json"):
        n += 1
        target = os.path.join(qdir, f"{base}.{n}.db")
    os.replace(raw_tmp, target)
    fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)  # like a verified backup: readable by root only
    finally:
        os.close(fd)
    atomic_write(target + ".report.json", (json.dumps(report, indent=1, sort_keys=True) + "\n").encode(), 0o600)
    fsync_path(qdir)
    return target


def cmd_backup(cfg: dict, args) -> Result:
    started = now()

    def body() -> Result:
        with job_guard(cfg, args, "backup"):
            if cfg["engine"] == "postgres":
                return pg_backup(cfg, args, started)
            try:
                db = resolve_database(cfg)
            except MissingDatabase as exc:
                if args.allow_missing:
                    LOG.info("backup: %s (--allow-missing)", exc.message)
                    return Result(EXIT_OK, {"ok": True, "skipped": "no database", "message": exc.message,
                                            "_status": "skipped"}, f"skipped: {exc.message} (nothing to back up)")
                raise
            return do_backup(cfg, args, db, started)

    return run_job(cfg, "backup", started, body)


def do_backup(cfg: dict, args, db: str, job_started: float) -> Result:
    started = now()  # after waiting for jobs.lock: the time the copy is about to be taken
    method = compression_method(cfg)
    bdir = cfg["backup_dir"]
    ensure_dir(bdir, key="backup_dir", strict_mode=True)
    tmp_dir = os.path.join(bdir, ".tmp")
    ensure_dir(tmp_dir)
    leftovers = clean_tmp(tmp_dir, job_started)
    if leftovers:
        LOG.warning("backup: removed %s leftover temp file(s) of an interrupted run from %s", len(leftovers), tmp_dir,
                    extra={"stderr": False})
    fs = mount_point(bdir)
    base = unique_base(bdir, started)
    pid = os.getpid()
    raw_tmp = os.path.join(tmp_dir, f"{base}.db.{pid}.tmp")
    comp_name = f"{base}.db.{EXT[method]}"
    comp_tmp = os.path.join(tmp_dir, f"{comp_name}.{pid}.tmp")
    final = os.path.join(bdir, comp_name)
    final_manifest = final + MANIFEST_SUFFIX
    busy = cfg["busy_timeout_ms"]

    needed = sum(os.path.getsize(p) for p in [db] + sqlite_side_files(db) if os.path.exists(p))

    def disk_full(exc: BaseException) -> ToolError:
        st = os.statvfs(bdir)
        return ToolError(f"backup filesystem {fs} is full (backup_dir {bdir}; filesystem size "
                         f"{human_size(st.f_blocks * st.f_frsize)}, the database is {human_size(needed)} and a backup "
                         f"needs about that much again while it is written): {one_line(exc)}; temporary files removed, "
                         "previous backups and the live database untouched",
                         EXIT_FAILED, filesystem=fs, needed_bytes=needed)

    if free_bytes(bdir) < needed:
        raise disk_full(OSError(errno.ENOSPC, f"need at least {human_size(needed)} for the raw copy"))

    report: dict = {}
    try:
        os.close(create_private(raw_tmp)[0])  # 0600 from the start: money data, root only
        src = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True, timeout=busy / 1000)
        try:
            src.execute(f"PRAGMA busy_timeout={int(busy)}")
            dst = sqlite3.connect(raw_tmp)
            try:
                t0 = time.monotonic()
                src.backup(dst, pages=-1)  # ONE step: never restarts, never blocks WAL writers
                copy_seconds = time.monotonic() - t0
            finally:
                dst.close()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise disk_full(exc) from exc
            raise ToolError(f"backup of {db} failed: {exc}") from exc
        finally:
            src.close()
        remove_quietly(*sqlite_side_files(raw_tmp))
        fsync_path(raw_tmp)

        report = inspect_copy(raw_tmp)
        remove_quietly(*sqlite_side_files(raw_tmp))
        if not report["ok"]:
            summary = problem_summary(report)
            qreport = {"reason": "verification failed", "summary": summary, "source": db,
                       "started": iso(started), "started_epoch": started, "tool_version": VERSION, **report}
            target = quarantine_copy(cfg, raw_tmp, base, qreport)
            raise ToolError(f"backup copy of {db} FAILED verification ({summary}); copy quarantined at {target}, "
                            "not rotated in; the live database may be damaged: run 'moneytracker-db check --quick' "
                            "and see docs/runbooks", EXIT_FAILED, quarantined=target, report=qreport)

        raw_sha, raw_size = sha256_file(raw_tmp)
        compress_file(raw_tmp, comp_tmp, method)
        comp_sha, comp_size = sha256_file(comp_tmp)
        check_sha, check_size = decompress(comp_tmp, method, None)
        if (check_sha, check_size) != (raw_sha, raw_size):
            raise ToolError(f"compressed copy does not decompress to the verified copy ({method}); nothing rotated in")
        finished = now()
        manifest = {
            "format": 1, "tool": TOOL, "tool_version": VERSION,
            "backup_file": comp_name, "source": db, "host": socket.gethostname(),
            "label": getattr(args, "label", None),
            "started": iso(started), "started_epoch": round(started, 3),
            "finished": iso(finished), "finished_epoch": round(finished, 3),
            "duration_seconds": round(finished - started, 3), "copy_seconds": round(copy_seconds, 3),
            "compression": method,
            "compressed": {"sha256": comp_sha, "size": comp_size},
            "raw": {"sha256": raw_sha, "size": raw_size},
            "page_size": report["page_size"], "page_count": report["page_count"],
            "schema": {"alembic_version": report["alembic_version"], "user_version": report["user_version"]},
            "row_counts": report["row_counts"], "max_ids": report.get("max_ids", {}),
            "integrity_check": report["integrity_check"], "foreign_key_check": report["foreign_key_check"],
            "verified": True,
        }
        os.link(comp_tmp, final)  # no-clobber publish of the backup file
        remove_quietly(comp_tmp)
        atomic_write(final_manifest, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode(), 0o600,
                     tmp_dir=tmp_dir)  # manifest LAST: only a backup with a manifest counts
        fsync_path(bdir)
    except ToolError:
        raise
    except (OSError, sqlite3.DatabaseError) as exc:
        if os.path.exists(final) and not os.path.exists(final_manifest):
            remove_quietly(final)
        if is_disk_full(exc):
            raise disk_full(exc) from exc
        raise ToolError(f"backup failed: {one_line(exc)}; temporary files removed") from exc
    finally:
        remove_quietly(raw_tmp, comp_tmp, *sqlite_side_files(raw_tmp))

    data = {"ok": True, "backup": final, "manifest": final_manifest, "size": comp_size, "raw_size": raw_size,
            "sha256": comp_sha, "compression": method, "duration_seconds": manifest["duration_seconds"],
            "copy_seconds": manifest["copy_seconds"], "page_count": report["page_count"],
            "schema": manifest["schema"], "row_counts": report["row_counts"], "leftovers_removed": leftovers,
            "message": f"verified backup {final}"}
    LOG.info("backup: ok %s (%s, raw %s, %.1fs)", final, human_size(comp_size), human_size(raw_size), manifest['duration_seconds'])
    text = (f"backup ok: {final}\n  size {human_size(comp_size)} ({method}; raw {human_size(raw_size)}), "
            f"{manifest['duration_seconds']:.1f}s, integrity ok, foreign keys ok")
    if cfg["offsite"] and not getattr(args, "no_offsite", False):
        off = do_offsite(cfg, final, final_manifest)
        data["offsite"] = off
        text += f"\n  offsite: {'ok ' + off['target'] if off['ok'] else 'FAILED: ' + off['error']}"
    return Result(EXIT_OK, data, text)


def do_offsite(cfg: dict, backup: str, manifest: str) -> dict:
    """Copy a verified backup + manifest offsite. Its failure is its own result: the local
    backup stays good and the backup command still exits 0."""
    started = now()
    off = cfg["offsite"]
    try:
        if "path" in off:
            dest = off["path"]
            if not os.path.isdir(dest):
                raise ToolError(f"offsite path {dest} is not a directory (not mounted?)")
            if os.stat(dest).st_dev == os.stat(cfg["backup_dir"]).st_dev:
                raise ToolError(f"offsite path {dest} is on the same filesystem as backup_dir (not mounted?)")
            for path in (backup, manifest):
                target = os.path.join(dest, os.path.basename(path))
                tmp = os.path.join(dest, f".{os.path.basename(path)}.{os.getpid()}.tmp")
                remove_quietly(tmp)  # left by a killed run with the same pid
                try:
                    fd, _ident = create_private(tmp)  # 0600 like the local backup
                    with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
                        out.flush()
                        os.fchmod(out.fileno(), 0o600)
                        os.fsync(out.fileno())
                    if sha256_file(tmp) != sha256_file(path):
                        raise ToolError(f"offsite copy {tmp} does not match the local file")
                    os.replace(tmp, target)
                finally:
                    remove_quietly(tmp)
            fsync_path(dest)
            target = os.path.join(dest, os.path.basename(backup))
        else:
            dest = off["rsync"]
            run_hook(["rsync", "-t", "--chmod=F600", "--timeout=600", backup, manifest, dest.rstrip("/") + "/"],
                     "offsite rsync")
            target = dest.rstrip("/") + "/" + os.path.basename(backup)
    except (ToolError, OSError) as exc:
        message = exc.message if isinstance(exc, ToolError) else f"offsite copy failed: {exc}"
        LOG.error("offsite: FAILED: %s (the local backup %s is good)", one_line(message), backup)
        record_job(cfg, "offsite", "failed", message, started)
        return {"ok": False, "error": message}
    LOG.info("offsite: ok %s", target)
    record_job(cfg, "offsite", "ok", f"copied to {target}", started)
    return {"ok": True, "target": target}


# --------------------------------------------------------------------------- check


def cmd_check(cfg: dict, args) -> Result:
    started = now()
    job = "check_full" if args.full else "check_quick"

    def body() -> Result:
        with job_guard(cfg, args, job):
            lower_priority()
            if cfg["engine"] == "postgres":
                return pg_check(cfg, args)
            return check_full(cfg) if args.full else check_quick(cfg, args)

    return run_job(cfg, job, started, body)


def quick_check_file(path: str, busy_ms: int) -> list[str]:
    con = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=busy_ms / 1000)
    try:
        con.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return [r[0] for r in con.execute("PRAGMA quick_check")]
    finally:
        con.close()


def check_quick(cfg: dict, args) -> Result:
    try:
        db = resolve_database(cfg)
    except MissingDatabase as exc:
        if getattr(args, "allow_missing", False):
            return Result(EXIT_OK, {"ok": True, "skipped": "no database", "message": exc.message,
                                    "_status": "skipped"}, f"skipped: {exc.message}")
        raise
    t0 = time.monotonic()
    try:
        rows = quick_check_file(db, cfg["busy_timeout_ms"])
    except sqlite3.DatabaseError as exc:
        rows = [f"error: {exc}"]
    seconds = round(time.monotonic() - t0, 3)
    if rows != ["ok"]:
        raise ToolError(f"quick_check of the LIVE database {db} FAILED: {first_problems(rows)}; "
                        "restore from the newest verified backup (docs/runbooks/integrity-check-failed.md)",
                        EXIT_FAILED, database=db, problems=problem_lines(rows)[:100])
    LOG.info("check_quick: ok %s (%ss)", db, seconds)
    return Result(EXIT_OK, {"ok": True, "database": db, "quick_check": rows, "seconds": seconds,
                            "message": f"quick_check ok {db}"}, f"check --quick ok: {db} ({seconds}s)")


def verify_backup(backup: Backup, dst: str | None, info: dict | None = None) -> dict:
    """sha256 of the compressed file against its manifest; decompress (to dst when given) and
    compare the raw sha256; integrity/foreign_key check of the decompressed copy."""
    if not backup.manifest:
        raise ToolError(f"{backup.path} has no manifest ({backup.problem}); refusing to use it")
    if not backup.verified:
        raise ToolError(f"{backup.path}: {backup.problem}; refusing to use it")
    expected = backup.manifest.get("compressed", {})
    sha, size = sha256_file(backup.path)
    if sha != expected.get("sha256") or size != expected.get("size"):
        raise ToolError(f"{backup.path} does not match its manifest (sha256 {sha[:16]}... size {size}, manifest "
                        f"{str(expected.get('sha256'))[:16]}... size {expected.get('size')}): damaged or tampered; "
                        "refusing to use it", EXIT_FAILED, backup=backup.path)
    raw_sha, raw_size = decompress(backup.path, backup.compression, dst, info)
    raw = backup.manifest.get("raw", {})
    if raw_sha != raw.get("sha256") or raw_size != raw.get("size"):
        raise ToolError(f"{backup.path} decompresses to data that does not match its manifest; refusing to use it")
    report = {"sha256": "ok"}
    if dst:
        report.update(inspect_copy(dst))
        remove_quietly(*sqlite_side_files(dst))
        if not report["ok"]:
            raise ToolError(f"{backup.path} FAILED verification after decompression ({problem_summary(report)}); "
                            "refusing to use it", EXIT_FAILED, backup=backup.path)
    return report


def check_full(cfg: dict) -> Result:
    backups = scan_backups(cfg["backup_dir"])
    newest = newest_verified(backups)
    if newest is None:
        raise ToolError(f"check --full: there is no verified backup in {cfg['backup_dir']} to check")
    tmp_dir = os.path.join(cfg["backup_dir"], ".tmp")
    ensure_dir(tmp_dir)
    tmp = os.path.join(tmp_dir, f"check-{os.getpid()}-{secrets.token_hex(4)}.db.tmp")
    t0 = time.monotonic()
    try:
        report = verify_backup(newest, tmp)
    except OSError as exc:
        raise ToolError(f"check --full of {newest.path} failed: {one_line(exc)}") from exc
    finally:
        remove_quietly(tmp, *sqlite_side_files(tmp))
    seconds = round(time.monotonic() - t0, 3)
    LOG.info("check_full: ok %s (%ss)", newest.path, seconds)
    return Result(EXIT_OK, {"ok": True, "backup": newest.path, "integrity_check": report["integrity_check"],
                            "foreign_key_check": report["foreign_key_check"], "seconds": seconds,
                            "message": f"full check ok {newest.path}"},
                  f"check --full ok: {newest.path} (integrity ok, foreign keys ok, {seconds}s)")


# --------------------------------------------------------------------------- prune / list


def cmd_prune(cfg: dict, args) -> Result:
    started = now()

    def body() -> Result:
        with job_guard(cfg, args, "prune"):
            if cfg["engine"] == "postgres":
                return pg_prune(cfg, args)
            backups = scan_backups(cfg["backup_dir"])
            decision = retention_decision(cfg, backups)
            newest = newest_verified(backups)
            deleted = []
            if any(item is newest or not item.verified for item in decision.delete):  # never happens
                raise ToolError("internal error: retention selected the newest or an unverified backup; "
                                "nothing deleted")
            for item in decision.delete:
                if not args.dry_run:
                    os.unlink(item.path)           # backup first, then its manifest
                    remove_quietly(item.manifest_path)
                deleted.append(item.path)
            if deleted and not args.dry_run:
                fsync_path(cfg["backup_dir"])
            kept = [{"path": i.path, "tiers": r} for i, r in decision.keep]
            verb = "would delete" if args.dry_run else "deleted"
            lines = [f"prune{' (dry run)' if args.dry_run else ''}: kept {len(kept)}, {verb} {len(deleted)}"]
            if decision.blocked:
                lines.append(f"  nothing pruned: {decision.blocked}")
                LOG.warning("prune: nothing pruned: %s", decision.blocked, extra={"stderr": False})
            lines += [f"  keeps: {k['path']} ({', '.join(k['tiers'])})" for k in kept]
            lines += [f"  {verb}: {p}" for p in deleted]
            if deleted and not args.dry_run:
                LOG.info("prune: deleted %s backup(s), kept %s", len(deleted), len(kept))
            return Result(EXIT_OK, {"ok": True, "dry_run": args.dry_run, "kept": kept,
                                    ("would_delete" if args.dry_run else "deleted"): deleted,
                                    "blocked": decision.blocked, "policy": cfg["retention"],
                                    "message": f"kept {len(kept)}, {verb} {len(deleted)}"}, "\n".join(lines))

    return run_job(cfg, "prune", started, body)


def cmd_list(cfg: dict, args) -> Result:
    if cfg["engine"] == "postgres":
        return pg_list(cfg, args)
    backups = scan_backups(cfg["backup_dir"])
    decision = retention_decision(cfg, backups)
    tiers = {id(i): r for i, r in decision.keep}
    rows = []
    for b in reversed(backups):
        rows.append({"path": b.path, "time": iso(b.ts), "age_seconds": round(now() - b.ts), "size": b.size,
                     "verified": b.verified, "problem": b.problem,
                     "kept_by": tiers.get(id(b), []) if b.verified else [],
                     "label": (b.manifest or {}).get("label")})
    quarantine = [{"report": a["name"], "time": iso(a["ts"]), "reason": a["reason"]}
                  for a in quarantine_attempts(cfg["backup_dir"])]
    lines = [f"{'time (UTC)':<21} {'size':>10}  {'verified':<8}  kept by / problem"]
    for r in rows:
        note = ",".join(r["kept_by"]) or "(next prune deletes it)" if r["verified"] else f"NOT USED: {r['problem']}"
        lines.append(f"{r['time']:<21} {human_size(r['size']):>10}  {'yes' if r['verified'] else 'NO':<8}  {note}"
                     f"{'  [' + r['label'] + ']' if r['label'] else ''}\n    {r['path']}")
    if not rows:
        lines.append(f"(no backups in {cfg['backup_dir']})")
    if quarantine:
        lines.append(f"quarantine ({os.path.join(cfg['backup_dir'], 'quarantine')}): {len(quarantine)} failed copies")
    if decision.blocked:
        lines.append(f"prune would delete nothing: {decision.blocked}")
    return Result(EXIT_OK, {"ok": True, "backups": rows, "quarantine": quarantine, "blocked": decision.blocked},
                  "\n".join(lines))


# --------------------------------------------------------------------------- restore


def choose_backup(cfg: dict, args) -> Backup:
    backups = scan_backups(cfg["backup_dir"])
    if args.backup:
        path = os.path.abspath(args.backup)
        if path.endswith(MANIFEST_SUFFIX):
            path = path[: -len(MANIFEST_SUFFIX)]
        name = os.path.basename(path)
        if not os.path.lexists(path):
            raise ToolError(f"backup {path} does not exist (pruned, moved, or never made); list the kept backups "
                            f"with `moneytracker-db list`; pass one with --backup", EXIT_FAILED, backup=path)
        if not BACKUP_RE.match(name) or not os.path.isfile(path):
            raise ToolError(f"--backup {args.backup}: not a backup file (expected moneytracker-<time>.db.zst|.gz); "
                            "list the kept backups with `moneytracker-db list`; pass one with --backup")
        for b in scan_backups(os.path.dirname(path)):
            if b.name == name:
                return b
        raise ToolError(f"--backup {args.backup}: not found; list the kept backups with `moneytracker-db list`; "
                        "pass one with --backup")
    newest = newest_verified(backups)
    if newest is None:
        raise ToolError(f"there is no verified backup in {cfg['backup_dir']} to restore")
    return newest


def aside_names(db: str, started: float) -> dict[str, str]:
    """{present file: its aside name}; never the name of an earlier restore's aside file."""
    present = [p for p in [db] + sqlite_side_files(db) if os.path.lexists(p)]
    base, n = f"{db}.pre-restore-{stamp(started)}", 0
    suffixes = ("", "-journal", "-wal", "-shm")
    while any(os.path.lexists(base + suffix) for suffix in suffixes):
        n += 1
        base = f"{db}.pre-restore-{stamp(started)}.{n}"
    return {p: base + p[len(db):] for p in present}


def restore_lock_line(cfg: dict, args, plan: dict) -> list[str]:
    """A restore plan's line about the maintenance lock when someone else holds it (and the plan's
    record of it), for the SQLite and the PostgreSQL restore alike."""
    record = read_lock(cfg)
    if record is None or token_matches(record, getattr(args, "lock_token", None)):
        return []
    plan["lock"] = {"state": lock_state(record), "owner": public_lock(record)}
    return [f"  lock:    {lock_state(record).upper()} by {holder_text(record)}: "
            "the restore needs its --lock-token (or the lock released)"]


def require_writers_stop(cfg: dict, args) -> None:
    if not cfg["stop_command"] and not args.writers_stopped:
        raise UsageError("restore needs stop_command (config or --stop-command) to stop the database writers, "
                         "or --writers-stopped to confirm they are already stopped")


def take_restore_lock(cfg: dict, args, reason: str) -> dict | None:
    """The lock a restore runs under: the one held with --lock-token, or taken now (returned, for
    the caller to release)."""
    record = read_lock(cfg)
    if token_matches(record, getattr(args, "lock_token", None)):
        return None
    if getattr(args, "lock_token", None) and record is None:
        raise ToolError("--lock-token given but the maintenance lock is not held; refusing", EXIT_LOCKED)
    return acquire_lock(cfg, owner=f"restore by {who_am_i()}", host=socket.gethostname(),
                        play=getattr(args, "play", None) or "moneytracker-db restore",
                        reason=reason, ttl=cfg["lock_ttl_seconds"])


def cmd_restore(cfg: dict, args) -> Result:
    started = now()
    if cfg["engine"] == "postgres":
        return pg_restore(cfg, args, started)
    try:
        db = resolve_database(cfg)
        exists = True
    except MissingDatabase as exc:
        if not exc.details.get("path"):
            raise  # e.g. the Docker volume itself does not exist
        db, exists = exc.details["path"], False
    backup = choose_backup(cfg, args)
    aside = aside_names(db, started)
    when = iso((backup.manifest or {}).get("started_epoch", backup.ts))
    plan = {"backup": backup.path, "backup_time": when, "database": db, "database_exists": exists,
            "aside": aside, "stop_command": cfg["stop_command"], "start_command": cfg["start_command"]}
    if not args.yes:
        lines = ["restore plan (nothing changed; run again with --yes to do it):",
                 f"  backup:  {backup.path}", f"           taken {when} ({human_age(now() - backup.ts)} ago)"
                 + ("" if backup.verified else f"  NOT VERIFIED: {backup.problem}"),
                 f"  target:  {db}{'' if exists else ' (does not exist yet)'}",
                 f"  stop:    {shlex.join(cfg['stop_command']) if cfg['stop_command'] else '(no stop_command: needs --writers-stopped)'}"]
        lines += [f"  aside:   {src} -> {dst}" for src, dst in aside.items()]
        lines.append(f"  start:   {shlex.join(cfg['start_command']) if cfg['start_command'] else '(no start_command)'}")
        lines += restore_lock_line(cfg, args, plan)
        return Result(EXIT_LOCKED, {"ok": False, "confirmation_required": True, "plan": plan,
                                    "message": "confirmation required: re-run with --yes"}, "\n".join(lines))
    require_writers_stop(cfg, args)

    def body() -> Result:
        return do_restore(cfg, args, db, exists, backup, aside, started, when)

    return run_job(cfg, "restore", started, body)


def do_restore(cfg, args, db, exists, backup, aside, started, when) -> Result:
    """Every failure keeps in its output (JSON and the error line) where the previous live files
    went: `aside` {live path: aside path} and `database_changed`."""
    moved: list[tuple[str, str]] = []
    state = {"swapped": False}
    try:
        return _do_restore(cfg, args, db, exists, backup, started, when, moved, state)
    except ToolError as exc:
        aside_done = dict(moved)
        exc.details.setdefault("aside", aside_done)
        exc.details.setdefault("database_changed", state["swapped"])
        exc.details.setdefault("database", db)
        if aside_done and "aside:" not in exc.message:
            exc.message += f"; previous files aside: {', '.join(aside_done.values())}"
        raise
    except (OSError, sqlite3.DatabaseError) as exc:
        aside_done = dict(moved)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"restore failed: {one_line(getattr(exc, 'strerror', None) or exc)}{where}"
        message += (f"; previous files aside: {', '.join(aside_done.values())}" if aside_done
                    else "; the live database was not replaced")
        raise ToolError(message, EXIT_FAILED, aside=aside_done, database_changed=state["swapped"],
                        database=db) from exc


def _do_restore(cfg, args, db, exists, backup, started, when, moved, state) -> Result:
    db_dir = os.path.dirname(db)
    if not os.path.isdir(db_dir):
        raise ToolError(f"the database directory {db_dir} does not exist")
    base = os.path.basename(db)
    clean_prefix = f".{base}.restore-"
    with contextlib.suppress(OSError):
        for name in os.listdir(db_dir):
            p = os.path.join(db_dir, name)
            st = os.lstat(p)
            if name.startswith(clean_prefix) and stat.S_ISREG(st.st_mode) and st.st_mtime < started:
                os.unlink(p)
    tmp = os.path.join(db_dir, f"{clean_prefix}{os.getpid()}.tmp")
    remove_quietly(tmp)  # unlink never follows a symlink
    replaced_stat = None
    if exists:
        replaced_stat = os.lstat(db)
        if not stat.S_ISREG(replaced_stat.st_mode):
            raise ToolError(f"the live database {db} is not a regular file (a symlink?); refusing to restore over "
                            "it; check what put it there", EXIT_FAILED)
    took_lock = None
    info: dict = {}
    try:
        try:
            verify_backup(backup, tmp, info)
        except OSError as exc:
            if is_disk_full(exc):
                raise ToolError(f"not enough space in {db_dir} (filesystem {mount_point(db_dir)}) to decompress "
                                f"{backup.path}: {one_line(exc)}; nothing changed") from exc
            raise
        # owner / mode of the file being replaced (or db_owner)
        if cfg["db_owner"]:
            uid, gid, mode = parse_owner(cfg["db_owner"])
            if mode is None:
                mode = stat.S_IMODE(replaced_stat.st_mode) if replaced_stat else 0o640
        elif replaced_stat:
            uid, gid, mode = replaced_stat.st_uid, replaced_stat.st_gid, stat.S_IMODE(replaced_stat.st_mode)
        else:
            dst = os.stat(db_dir)
            uid, gid, mode = dst.st_uid, dst.st_gid, 0o640
        # the directory is writable by the backend's uid: chown/chmod the file the tool holds open,
        # never a path that may have become a symlink
        set_owner_held(info["fd"], tmp, uid, gid, mode)

        took_lock = take_restore_lock(cfg, args, f"restore of {backup.name}")
        jobs_wait = getattr(args, "jobs_wait", None)
        with jobs_lock(cfg, "restore", 600.0 if jobs_wait is None else jobs_wait):
            if cfg["stop_command"]:
                try:
                    run_hook(cfg["stop_command"], "stop_command")
                except ToolError:
                    with contextlib.suppress(ToolError):
                        if cfg["start_command"]:
                            run_hook(cfg["start_command"], "start_command (after failed stop)")
                    raise
            # what is there NOW (the writers' shutdown may have checkpointed or created -wal/-shm)
            aside = aside_names(db, started)
            try:
                for src, dst in aside.items():
                    if os.path.lexists(src) and not os.path.lexists(dst):
                        os.rename(src, dst)
                        moved.append((src, dst))
                fsync_path(db_dir)
                if not same_file(info["fd"], tmp):
                    raise OSError(errno.EEXIST, f"{tmp} was replaced by another file or a symlink")
                os.rename(tmp, db)
                state["swapped"] = True
                fsync_path(db_dir)
            except OSError as exc:
                if not state["swapped"]:
                    for src, dst in reversed(moved):
                        with contextlib.suppress(OSError):
                            if not os.path.exists(src):
                                os.rename(dst, src)
                    with contextlib.suppress(OSError):
                        fsync_path(db_dir)
                    moved.clear()
                    raise ToolError(f"restore swap failed: {one_line(exc)}; the previous database was put back") from exc
                raise
            start_error = None
            if cfg["start_command"]:
                try:
                    run_hook(cfg["start_command"], "start_command")
                except ToolError as exc:
                    start_error = exc.message
            try:
                rows = quick_check_file(db, cfg["busy_timeout_ms"])
            except sqlite3.DatabaseError as exc:
                rows = [f"error: {exc}"]
    finally:
        if "fd" in info:
            os.close(info["fd"])
        remove_quietly(tmp, *sqlite_side_files(tmp))
        if took_lock:
            with contextlib.suppress(ToolError, OSError):
                release_lock(cfg, took_lock["token"])

    aside_done = dict(moved)
    data = {"ok": True, "restored": backup.path, "backup_time": when, "database": db, "aside": aside_done,
            "database_changed": True, "quick_check": rows, "message": f"restored {backup.name} into {db}"}
    details = {k: v for k, v in data.items() if k not in ("ok", "message")}  # ToolError takes message itself
    aside_text = f"previous files aside: {', '.join(aside_done.values()) or 'none'}"
    lines = [f"restore done: {db}", f"  from backup {backup.path} (taken {when})"]
    lines += [f"  previous file kept aside: {dst}" for dst in aside_done.values()] or ["  (there was no previous file)"]
    if start_error:
        raise ToolError(f"restored {backup.name} into {db} ({aside_text}) but {start_error}", EXIT_FAILED, **details)
    if rows != ["ok"]:
        raise ToolError(f"restored {backup.name} into {db} but its quick_check FAILED: {first_problems(rows)}; "
                        f"{aside_text}", EXIT_FAILED, **details)
    LOG.warning("restore: %s (taken %s) restored into %s; %s", backup.path, when, db, aside_text, extra={"stderr": False})
    return Result(EXIT_OK, data, "\n".join(lines))


# --------------------------------------------------------------------------- compare


def backup_max_ids(cfg: dict, backup: Backup, tables: dict[str, str]) -> tuple[dict[str, int | None], str]:
    """{table: highest id in the backup (None: no rows / no such table)} for the live id tables.
    From the manifest (recorded at backup time) when it has them all, else from the backup itself,
    decompressed into backup_dir/.tmp (0600), its raw sha256 checked against the manifest."""
    recorded = (backup.manifest or {}).get("max_ids")
    counts = (backup.manifest or {}).get("row_counts") or {}
    if isinstance(recorded, dict) and all(t in recorded or t not in counts for t in tables):
        return {t: (recorded.get(t) if isinstance(recorded.get(t), int) else None) for t in tables}, "manifest"
    tmp_dir = os.path.join(cfg["backup_dir"], ".tmp")
    ensure_dir(tmp_dir)
    tmp = os.path.join(tmp_dir, f"compare-{os.getpid()}-{secrets.token_hex(4)}.db.tmp")
    try:
        raw_sha, raw_size = decompress(backup.path, backup.compression, tmp)
        raw = (backup.manifest or {}).get("raw", {})
        if raw and (raw_sha, raw_size) != (raw.get("sha256"), raw.get("size")):
            raise ToolError(f"{backup.path} decompresses to data that does not match its manifest; "
                            "refusing to use it", EXIT_FAILED, backup=backup.path)
        con = sqlite3.connect(sqlite_uri(tmp, mode="ro", immutable="1"), uri=True)
        try:
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            in_backup = id_columns(con, [t for t in tables if t in present])
            out: dict[str, int | None] = {}
            for table in tables:
                column = in_backup.get(table)
                out[table] = (con.execute(f"SELECT max({qident(column)}) FROM {qident(table)}").fetchone()[0]
                              if column else None)
        finally:
            con.close()
    except OSError as exc:
        raise ToolError(f"cannot read {backup.path} to compare: {one_line(exc)}") from exc
    finally:
        remove_quietly(tmp, *sqlite_side_files(tmp))
    return out, "backup"


PG_COMPARE_SQL = r"""
SELECT t.tablename, EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = 'public'
       AND c.table_name = t.tablename AND c.column_name = 'id' AND c.data_type IN ('integer', 'bigint', 'smallint'))
FROM pg_tables t WHERE t.schemaname = 'public' ORDER BY 1
"""


def pg_compare(cfg: dict, args) -> Result:
    """PostgreSQL: what a point-in-time restore to --target-time would lose, per table of the public
    schema: its rows, and the rows written (inserted or updated) after that time by their commit
    timestamps (track_commit_timestamp; rows deleted since cannot be seen). Read-only, in one
    REPEATABLE READ snapshot; table names from pg_tables, always quoted (quote_ident's rule); the
    time goes in as a psql variable, never as SQL text."""
    target, _epoch = pg_target_time(getattr(args, "target_time", None))
    if not target:
        raise UsageError("compare with engine postgres needs --target-time (the point a restore would go back to)")
    container = pg_container(cfg)

    def psql(sql: str) -> list[list[str]]:
        argv = ["docker", "exec", "-i", "-u", "postgres", container, "sh", "-c",
                'exec psql -X -q -At -F "\t" -v ON_ERROR_STOP=1 -v "since=$1" -d "$POSTGRES_DB"', "sh", target]
        try:
            proc = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError(f"cannot ask PostgreSQL: {exc}") from exc
        if proc.returncode != 0:
            raise ToolError(f"PostgreSQL: {one_line(proc.stderr or proc.stdout)[-600:]}")
        return [line.split("\t") for line in proc.stdout.splitlines() if line]

    tables = [(name, has_id == "t") for name, has_id in psql(PG_COMPARE_SQL) if name != "alembic_version"]
    names = [name for name, _has_id in tables]
    queries = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"]
    newer = "pg_xact_commit_timestamp(xmin) > :'since'::timestamptz"
    for name, has_id in tables:
        q = '"' + name.replace('"', '""') + '"'  # quote_ident's rule; the name comes from pg_tables
        ids = (f"(SELECT string_agg(id::text, ',') FROM (SELECT id FROM {q} WHERE {newer} ORDER BY id LIMIT 20) x)"
               if has_id else "NULL")
        queries.append(f"SELECT (SELECT count(*) FROM {q}), (SELECT count(*) FROM {q} WHERE {newer}), {ids};")
    queries.append("COMMIT;")
    try:
        rows = psql("\n".join(queries))
    except ToolError as exc:
        if "commit timestamp" in str(exc):
            raise ToolError("PostgreSQL does not track commit timestamps (track_commit_timestamp is off: deploy this "
                            "collection's compose file): which rows a restore would lose cannot be told") from exc
        raise
    found: dict[str, dict] = {}
    lost = 0
    if len(rows) != len(names):
        raise ToolError(f"PostgreSQL answered {len(rows)} row(s) for {len(names)} table(s)")
    for name, (live, newer_count, ids) in zip(names, rows):
        new_ids = [int(x) for x in ids.split(",")] if ids else []
        found[name] = {"live": int(live), "backup": None, "new_count": int(newer_count), "new_ids": new_ids}
        lost += int(newer_count)
    lines = [f"compare PostgreSQL (compose project {cfg['postgres']['project']}) with a restore to {target}"]
    for name, row in found.items():
        more = f", ... ({row['new_count']} in all)" if row["new_count"] > len(row["new_ids"]) else ""
        ids = f", ids {', '.join(map(str, row['new_ids']))}{more}" if row["new_ids"] else ""
        detail = f"{row['new_count']} row(s) written after it{ids}" if row["new_count"] else "nothing written after it"
        lines.append(f"  {name}: live {row['live']}; {detail}")
    lines.append(f"a restore to {target} would lose {lost} row(s) written after it (inserted or updated; by commit time)")
    return Result(EXIT_OK, {"ok": True, "engine": "postgres", "backup": None, "target_time": target,
                            "backup_started": target, "database": f"postgres: compose project {cfg['postgres']['project']}",
                            "tables": found, "writes_lost": lost, "max_ids_from": "commit timestamps",
                            "message": f"a restore to {target} would lose {lost} row(s)"}, "\n".join(lines))


def cmd_compare(cfg: dict, args) -> Result:
    """What a restore of a backup would lose: per table of the live database its row count, the
    backup's (manifest), and the ids written after the backup. Read-only: the live file is opened
    mode=ro; table names come from the live sqlite_master and are always quoted; nothing from the
    manifest ever becomes SQL."""
    if cfg["engine"] == "postgres":
        return pg_compare(cfg, args)
    if getattr(args, "target_time", None):
        raise UsageError("--target-time is for engine postgres (a restore to a point in time); on SQLite compare "
                         "with a backup (--backup)")
    db = resolve_database(cfg)
    backup = choose_backup(cfg, args)
    if not backup.verified or not backup.manifest:
        raise ToolError(f"{backup.path}: {backup.problem or 'not verified'}; refusing to use it")
    busy = cfg["busy_timeout_ms"]
    con = sqlite3.connect(sqlite_uri(db, mode="ro"), uri=True, timeout=busy / 1000)
    try:
        con.execute(f"PRAGMA busy_timeout={int(busy)}")
        con.execute("BEGIN")  # one snapshot for every count
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' "
            "ORDER BY name")]
        live_ids = id_columns(con, names)
        max_ids, source = backup_max_ids(cfg, backup, live_ids)
        counts = backup.manifest.get("row_counts") or {}
        tables: dict[str, dict] = {}
        lost = 0
        for name in names:
            q = qident(name)
            row = {"live": con.execute(f"SELECT count(*) FROM {q}").fetchone()[0],
                   "backup": counts.get(name) if isinstance(counts.get(name), int) else None,
                   "new_ids": None, "new_count": None}
            column = live_ids.get(name)
            if column:
                qc = qident(column)
                bound = max_ids.get(name)
                where, params = (f" WHERE {qc} > ?", (bound,)) if bound is not None else ("", ())
                row["backup_max_id"] = bound
                row["new_count"] = con.execute(f"SELECT count(*) FROM {q}{where}", params).fetchone()[0]
                row["new_ids"] = [r[0] for r in con.execute(
                    f"SELECT {qc} FROM {q}{where} ORDER BY {qc} LIMIT 20", params)]
                lost += row["new_count"]
            tables[name] = row
        con.rollback()
    except sqlite3.DatabaseError as exc:
        raise ToolError(f"cannot read the live database {db}: {exc}") from exc
    finally:
        con.close()
    started = backup.manifest.get("started") or iso(backup.ts)
    lines = [f"compare {db}", f"   with {backup.path} (taken {started})"]
    for name, row in tables.items():
        shown = json.dumps(name) if any(c in name for c in "\"' \n;") else name
        if row["new_count"] is None:
            detail = "no integer id: which rows are newer cannot be told"
        elif row["new_count"]:
            more = f", ... ({row['new_count']} in all)" if row["new_count"] > len(row["new_ids"]) else ""
            detail = f"{row['new_count']} row(s) newer than the backup, ids {', '.join(map(str, row['new_ids']))}{more}"
        else:
            detail = "nothing newer than the backup"
        lines.append(f"  {shown}: live {row['live']}, backup {'-' if row['backup'] is None else row['backup']}; {detail}")
    lines.append(f"a restore of this backup would lose {lost} row(s) written after it (counted by id)")
    return Result(EXIT_OK, {"ok": True, "backup": backup.path, "backup_started": started, "database": db,
                            "tables": tables, "writes_lost": lost, "max_ids_from": source,
                            "message": f"a restore of {backup.name} would lose {lost} row(s)"}, "\n".join(lines))


# --------------------------------------------------------------------------- status / metrics


def snapshot(cfg: dict) -> dict:
    t = now()
    jobs = {}
    recorded = load_status(cfg)["jobs"]
    for job in JOBS:
        rec = dict(recorded.get(job, {}))
        if rec:
            rec["age_seconds"] = round(t - rec["last_run_epoch"]) if "last_run_epoch" in rec else None
            rec["success_age_seconds"] = (round(t - rec["last_success_epoch"])
                                          if "last_success_epoch" in rec else None)
        jobs[job] = rec or None
    record = read_lock(cfg)
    if cfg["engine"] == "postgres":
        return {"jobs": jobs, "engine": "postgres", **pg_snapshot_backups(cfg, t),
                "maintenance_lock": {"state": lock_state(record), "owner": public_lock(record)}}
    backups = scan_backups(cfg["backup_dir"])
    newest = newest_verified(backups)
    fs = {"backup_dir": cfg["backup_dir"], "filesystem": None, "free_bytes": None}
    if os.path.isdir(cfg["backup_dir"]):
        fs.update(filesystem=mount_point(cfg["backup_dir"]), free_bytes=free_bytes(cfg["backup_dir"]))
    return {
        "jobs": jobs,
        "engine": "sqlite",
        "newest_backup": None if newest is None else {
            "path": newest.path, "time": iso(newest.ts), "epoch": newest.ts,
            "age_seconds": round(t - newest.ts), "size": newest.size},
        "backups_count": sum(1 for b in backups if b.verified),
        "unverified_files": [b.path for b in backups if not b.verified],
        "quarantined": len(quarantine_attempts(cfg["backup_dir"])),
        "backup_fs": fs,
        "maintenance_lock": {"state": lock_state(record), "owner": public_lock(record)},
    }


def render_metrics(snap: dict) -> str:
    out: list[str] = []

    def metric(name, help_text, samples):
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            label = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
            out.append(f"{name}{label} {value}")

    jobs = {j: r for j, r in snap["jobs"].items() if r}
    metric("moneytracker_db_last_success_timestamp_seconds", "Unix time of the last successful run of the job.",
           [({"job": j}, r.get("last_success_epoch", 0)) for j, r in jobs.items()])
    metric("moneytracker_db_last_run_timestamp_seconds", "Unix time of the last run of the job (any result).",
           [({"job": j}, r.get("last_run_epoch", 0)) for j, r in jobs.items()])
    metric("moneytracker_db_last_run_success", "1 if the last run of the job succeeded, 0 if it failed or was skipped.",
           [({"job": j}, 1 if r.get("result") == "ok" else 0) for j, r in jobs.items()])
    newest = snap["newest_backup"]
    metric("moneytracker_db_newest_backup_timestamp_seconds", "Unix time of the newest verified backup (0: none).",
           [({}, newest["epoch"] if newest else 0)])
    metric("moneytracker_db_newest_backup_size_bytes", "Size of the newest verified backup file (compressed).",
           [({}, newest["size"] if newest else 0)])
    metric("moneytracker_db_backups_count", "Number of verified backups in backup_dir.", [({}, snap["backups_count"])])
    metric("moneytracker_db_backup_fs_free_bytes", "Free bytes on the filesystem of backup_dir.",
           [({}, snap["backup_fs"]["free_bytes"] or 0)])
    state = snap["maintenance_lock"]["state"]
    metric("moneytracker_db_maintenance_lock_held", "1 while the maintenance lock is held (stale included).",
           [({}, 0 if state == "free" else 1)])
    metric("moneytracker_db_maintenance_lock_stale", "1 while the maintenance lock is past its TTL.",
           [({}, 1 if state == "stale" else 0)])
    return "\n".join(out) + "\n"


def refresh_textfile(cfg: dict) -> str | None:
    if not cfg.get("textfile_dir"):
        return None
    path = os.path.join(cfg["textfile_dir"], "moneytracker_db.prom")
    try:
        ensure_dir(cfg["textfile_dir"], mode=0o755)
        atomic_write(path, render_metrics(snapshot(cfg)).encode(), 0o644)
    except (OSError, ToolError) as exc:
        LOG.warning("metrics: could not write %s: %s", path, exc)
        return None
    return path


def cmd_status(cfg: dict, args) -> Result:
    snap = snapshot(cfg)
    if args.textfile:
        if not cfg.get("textfile_dir"):
            raise UsageError("--textfile needs textfile_dir (config or --textfile-dir)")
        snap["textfile"] = refresh_textfile(cfg)
    lines = [f"{'job':<12} {'result':<8} {'last run':<21} {'age':>8}  {'last success':<21} {'age':>8}"]
    for job, rec in snap["jobs"].items():
        if not rec:
            lines.append(f"{job:<12} {'never':<8}")
            continue
        lines.append(f"{job:<12} {rec.get('result', '?'):<8} {rec.get('last_run', '-'):<21} "
                     f"{human_age(rec.get('age_seconds')):>8}  {rec.get('last_success') or 'never':<21} "
                     f"{human_age(rec.get('success_age_seconds')):>8}"
                     + (f"\n{'':<13}{rec.get('message')}" if rec.get("result") != "ok" and rec.get("message") else ""))
    n = snap["newest_backup"]
    lines.append(f"newest verified backup: {n['path']} ({n['time']}, {human_age(n['age_seconds'])} ago, "
                 f"{human_size(n['size'])})" if n else "newest verified backup: NONE")
    lines.append(f"verified backups: {snap['backups_count']}; quarantined copies: {snap['quarantined']}")
    fs = snap["backup_fs"]
    lines.append(f"backup filesystem: {fs['filesystem']} free {human_size(fs['free_bytes'])}")
    lk = snap["maintenance_lock"]
    if lk["state"] == "free":
        lines.append("maintenance lock: free")
    else:
        lines.append(f"maintenance lock: {lk['state'].upper()} by {holder_text(lk['owner'])}"
                     + (f"; clear it with: {UNLOCK_HINT}" if lk["state"] == "stale" else ""))
    return Result(EXIT_OK, {"ok": True, **snap}, "\n".join(lines))


# --------------------------------------------------------------------------- config


def cmd_config(cfg: dict, args) -> Result:
    """The configuration as the tool reads it (file + flags + defaults). Reaching here means it is
    valid: a bad key or value exits 2 in load_config, naming the key. Ansible uses this to validate
    a new config file before it replaces the old one."""
    shown = {k: v for k, v in cfg.items() if not k.startswith("_")}
    data = {"ok": True, "config_path": cfg.get("_config_path"), "config": shown,
            "message": f"config ok ({cfg.get('_config_path') or 'defaults and flags only'})"}
    text = f"config ok: {cfg.get('_config_path') or '(no config file: defaults and flags)'}\n" \
        + json.dumps(shown, indent=1, sort_keys=True)
    return Result(EXIT_OK, data, text)


# --------------------------------------------------------------------------- lock commands


def cmd_lock(cfg: dict, args) -> Result:
    action = args.lock_action
    if action == "acquire":
        ttl = args.ttl if args.ttl is not None else cfg["lock_ttl_seconds"]
        if ttl < 1:
            raise UsageError("--ttl must be >= 1")
        record = acquire_lock(cfg, args.owner, args.host or socket.gethostname(), args.play, args.reason,
                              ttl, args.wait, user=args.user, controller_pid=args.controller_pid)
        refresh_textfile(cfg)
        return Result(EXIT_OK, {"ok": True, "token": record["token"], "lock": public_lock(record),
                                "message": f"acquired by {holder_text(record)}"}, record["token"])
    if action == "release":
        state = release_lock(cfg, args.token)
        refresh_textfile(cfg)
        return Result(EXIT_OK, {"ok": True, "state": state, "message": f"lock {state}"},
                      "lock released" if state == "released" else "lock already free")
    if action == "status":
        record = read_lock(cfg)
        state = lock_state(record)
        data = {"ok": state == "free", "state": state, "lock": public_lock(record)}
        if state == "free":
            return Result(EXIT_OK, data, "maintenance lock: free")
        if state == "stale":
            data["clear_with"] = UNLOCK_HINT
            return Result(EXIT_STALE, data, f"{stale_text(record)} (lock id {lock_record_id(record)})")
        return Result(EXIT_LOCKED, data, f"maintenance lock: held by {holder_text(record)} (pid {record.get('pid')}"
                                         f"{', reason: ' + record['reason'] if record.get('reason') else ''}); "
                                         f"expires {record.get('expires_at')}; id {lock_record_id(record)}")
    if action == "break":
        if not args.force:
            raise UsageError("lock break needs --force (it is the only forced release; prefer 'lock release --token')")
        record, ident = read_lock_file(cfg)
        if record is None:
            return Result(EXIT_OK, {"ok": True, "state": "free", "message": "lock already free"},
                          "maintenance lock: already free")
        state = lock_state(record)
        if args.id is not None and lock_record_id(record) != args.id:
            raise ToolError(f"not broken: the lock changed since it was shown: now held by {holder_text(record)} "
                            f"(id {lock_record_id(record)}, {state}; the lock shown had id {args.id})",
                            EXIT_LOCKED, lock=public_lock(record), state=state)
        if not unlink_lock_if_same(cfg, ident):
            now_record = read_lock(cfg)
            if now_record is not None:
                raise ToolError(f"not broken: the lock changed while it was being broken: now held by "
                                f"{holder_text(now_record)} (id {lock_record_id(now_record)})",
                                EXIT_LOCKED, lock=public_lock(now_record), state=lock_state(now_record))
        fsync_path(cfg["state_dir"])
        refresh_textfile(cfg)
        LOG.warning("lock: BROKEN by %s on %s (reason: %s): was %s, held by %s", who_am_i(), socket.gethostname(),
                    args.reason or 'none given', state, holder_text(record), extra={"stderr": False})
        return Result(EXIT_OK, {"ok": True, "state": "broken", "was": public_lock(record), "was_state": state,
                                "message": f"broke the lock of {holder_text(record)}"},
                      f"maintenance lock broken (was {state}, held by {holder_text(record)})")
    raise UsageError("lock needs one of: acquire, release, status, break")


# --------------------------------------------------------------------------- migration journal
#
# A migration never changes the live file in place: the play stops the writers, `migration copy`
# copies the live file (backup API, one step) to <db>.migrating, the new image migrates that
# copy, `migration swap` checks it and renames it over the live file after hard-linking the live
# file to <db>.pre-swap. Every step is recorded first in state_dir/migration.json, so a later run
# can see where a dead run stopped and finish or revert it. Whether the swap happened is read
# from the FILES (see migration_files), never only from the journal.

MIGRATION_HISTORY_KEEP = 20
MIGRATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")
MIGRATION_SET_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MIGRATION_RESERVED = frozenset({"id", "token_id", "from", "to", "state", "started", "started_epoch", "engine",
                                "database", "copy", "aside", "steps", "finished", "result", "message"})
MIGRATION_SIDE = ("-wal", "-shm", "-journal")
NO_WRITER = "the database still has a writer; stop the backend first"


def journal_path(cfg: dict) -> str:
    return os.path.join(cfg["state_dir"], "migration.json")


def history_dir(cfg: dict) -> str:
    return os.path.join(cfg["state_dir"], "migrations")


def read_journal(cfg: dict) -> dict | None:
    path = journal_path(cfg)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8") as fh:
        text = fh.read()
    try:
        journal = json.loads(text)
        if not isinstance(journal, dict) or not isinstance(journal.get("steps"), list):
            raise ValueError("not a journal object")
    except ValueError as exc:
        raise ToolError(f"the migration journal {path} is unreadable ({exc}); look at it by hand "
                        "(docs/runbooks/migration-failed.md)", EXIT_FAILED, journal_path=path) from exc
    return journal


def write_journal(cfg: dict, journal: dict) -> None:
    ensure_dir(cfg["state_dir"])
    atomic_write(journal_path(cfg), (json.dumps(journal, indent=1, sort_keys=True) + "\n").encode(), 0o600)


def add_step(journal: dict, name: str, set_state: bool = True, **fields) -> dict:
    step = {"step": name, "at": iso(now()), **fields}
    journal.setdefault("steps", []).append(step)
    if set_state:
        journal["state"] = name
    return step


def journal_who(journal: dict) -> str:
    g = journal.get
    text = f"{g('owner') or '?'}@{g('host') or '?'} ({g('play') or '?'})"
    if g("user"):
        text += f", user {g('user')}"
    if g("controller_pid"):
        text += f", controller pid {g('controller_pid')}"
    return text + f", started {g('started') or '?'}"


def journal_text(journal: dict) -> str:
    return (f"migration {journal.get('id')} ({journal.get('from')} -> {journal.get('to')}) at step "
            f"'{journal.get('state')}', by {journal_who(journal)}")


def parse_sets(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not MIGRATION_SET_KEY_RE.match(key):
            raise UsageError(f"--set {item!r}: expected KEY=VALUE with KEY like image or previous_compose "
                             "(lower case letters, digits, _)")
        if key in MIGRATION_RESERVED:
            raise UsageError(f"--set {key}=...: '{key}' is kept by the tool itself "
                             f"(reserved: {', '.join(sorted(MIGRATION_RESERVED))})")
        out[key] = value
    return out


def migration_paths(db: str) -> tuple[str, str]:
    return db + ".migrating", db + ".pre-swap"


def lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def migration_files(db: str, copy: str, aside: str) -> dict:
    """What the files say. swapped == the aside exists, the copy does not, and the aside is not
    the live file (a hard link made before the rename has the live file's inode)."""
    live, c, a = lstat_or_none(db), lstat_or_none(copy), lstat_or_none(aside)
    problems = []
    for what, path, st in (("live database", db, live), ("copy", copy, c), ("pre-swap file", aside, a)):
        if st is not None and not stat.S_ISREG(st.st_mode):
            problems.append(f"the {what} {path} is not a regular file (a symlink or other planted file?)")
    same = bool(live and a and (live.st_dev, live.st_ino) == (a.st_dev, a.st_ino))
    return {"live": live, "copy": c, "aside": a, "aside_is_live": same,
            "swapped": a is not None and c is None and not same, "problems": problems}


def refuse_problems(files: dict) -> None:
    if files["problems"]:
        raise ToolError("; ".join(files["problems"]) + "; refusing to touch it: check what put it there, "
                        "then remove it by hand", EXIT_FAILED, problems=files["problems"])


def remove_side_files(path: str) -> list[str]:
    """unlink() never follows a symlink: removing a planted link is safe."""
    removed = []
    for suffix in MIGRATION_SIDE:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)
            removed.append(path + suffix)
    return removed


def set_owner_held(fd: int, path: str, uid: int, gid: int, mode: int) -> None:
    """fchown + fchmod of a file the tool created and still holds open, after checking with lstat
    that path still names that very file: a symlink or another file put there meanwhile (the data
    directory is writable by the backend's uid) is refused. Holding the descriptor keeps the
    inode number from being reused, so the comparison is sound."""
    st = os.fstat(fd)
    cur = lstat_or_none(path)
    if cur is None or not stat.S_ISREG(cur.st_mode) or (cur.st_dev, cur.st_ino) != (st.st_dev, st.st_ino):
        raise ToolError(f"{path} was replaced by another file or a symlink while the tool worked on it; "
                        "refusing to change its owner or mode (is something else writing to the data "
                        "directory?)", EXIT_FAILED, path=path)
    if st.st_nlink != 1:
        raise ToolError(f"{path} has {st.st_nlink} hard links; refusing to change its owner or mode",
                        EXIT_FAILED, path=path)
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
    os.fsync(fd)


def same_file(fd: int, path: str) -> bool:
    st, cur = os.fstat(fd), lstat_or_none(path)
    return bool(cur and stat.S_ISREG(cur.st_mode) and (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino))


def checkpoint_truncate(path: str, busy_ms: int, busy_message: str) -> None:
    """PRAGMA wal_checkpoint(TRUNCATE) on path; busy (a writer or an open reader) -> ToolError."""
    con = sqlite3.connect(sqlite_uri(path, mode="rw"), uri=True, timeout=busy_ms / 1000)
    try:
        con.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        row = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise ToolError(f"{busy_message} ({path}: {exc}); nothing changed", EXIT_FAILED, database=path) from exc
        raise
    finally:
        con.close()
    if row and row[0] == 1:
        raise ToolError(f"{busy_message} ({path}: checkpoint busy); nothing changed", EXIT_FAILED, database=path)


def schema_version(path: str, busy_ms: int = 5000) -> str | None:
    """alembic_version.version_num of path opened read-only; None when unreadable or absent."""
    if not path or lstat_or_none(path) is None:
        return None
    wal = lstat_or_none(path + "-wal")
    # Without a WAL (or with an empty one) everything is in the main file: read it as immutable so
    # that a read-only look creates no -wal/-shm in the data directory.
    params = {"mode": "ro"} if wal is not None and wal.st_size > 0 else {"mode": "ro", "immutable": "1"}
    try:
        con = sqlite3.connect(sqlite_uri(path, **params), uri=True, timeout=busy_ms / 1000)
    except sqlite3.DatabaseError:
        return None
    try:
        con.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").fetchone():
            return None
        rows = [r[0] for r in con.execute('SELECT "version_num" FROM "alembic_version"')]
        return rows[0] if len(rows) == 1 else None
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()


def require_token(cfg: dict, token: str | None) -> dict:
    record = read_lock(cfg)
    if record is None:
        raise ToolError("refused: the maintenance lock is not held (released or broken?) and migration "
                        "commands run only under it; take it (lock acquire) or adopt the journal "
                        "(migration adopt)", EXIT_LOCKED, lock=None, state="free")
    if not token_matches(record, token):
        state = lock_state(record)
        raise ToolError(f"refused: the maintenance lock is held by {holder_text(record)} "
                        f"(id {lock_record_id(record)}{', STALE' if state == 'stale' else ''}) and the "
                        "--lock-token given is not its token", EXIT_LOCKED, lock=public_lock(record), state=state)
    return record


def require_journal(cfg: dict) -> dict:
    journal = read_journal(cfg)
    if journal is None:
        raise ToolError(f"no unfinished migration (no journal {journal_path(cfg)})", EXIT_FAILED)
    return journal


def journal_db(cfg: dict, journal: dict | None) -> tuple[str | None, str | None, str | None]:
    """(live, copy, aside): the journal's paths when there is one, else from the config; none on
    PostgreSQL (its migration runs in place, in one transaction: no copy, no swap)."""
    if cfg["engine"] == "postgres":
        return None, None, None
    if journal and isinstance(journal.get("database"), str):
        return journal["database"], journal["copy"], journal["aside"]
    try:
        db = resolve_database(cfg)
    except MissingDatabase as exc:
        db = exc.details.get("path")
    except ConfigError:
        db = None
    if not db:
        return None, None, None
    return (db, *migration_paths(db))


def mig_begin(cfg: dict, args, record: dict) -> Result:
    existing = read_journal(cfg)
    if existing is not None:
        raise ToolError(f"not begun: an unfinished migration exists: {journal_text(existing)}; finish or revert "
                        "it first (moneytracker-db migration status)", EXIT_FAILED, journal=existing)
    if not MIGRATION_ID_RE.match(args.id):
        raise UsageError(f"--id {args.id!r}: letters, digits and . _ : + - only (it names a file)")
    sets = parse_sets(args.set)
    if cfg["engine"] == "postgres":
        files = {"engine": "postgres"}
    else:
        db = resolve_database(cfg)
        copy, aside = migration_paths(db)
        files = {"engine": "sqlite", "database": db, "copy": copy, "aside": aside}
    t = now()
    journal = {**sets, "id": args.id, "token_id": lock_record_id(record), "from": args.from_, "to": args.to,
               "state": "begun", "started": iso(t), "started_epoch": round(t, 3),
               **files, "steps": [{"step": "begun", "at": iso(t)}]}
    write_journal(cfg, journal)
    LOG.info("migration: begun %s", journal_text(journal))
    return Result(EXIT_OK, {"ok": True, "journal": journal, "message": f"migration {args.id} begun"},
                  f"migration {args.id} begun ({args.from_} -> {args.to}); journal {journal_path(cfg)}")


def mig_step(cfg: dict, args, record: dict) -> Result:
    journal = require_journal(cfg)
    sets = parse_sets(args.set)
    if not args.name.strip():
        raise UsageError("--name must not be empty")
    journal.update(sets)
    add_step(journal, args.name, **sets)
    write_journal(cfg, journal)
    LOG.info("migration: %s step '%s'", journal['id'], args.name)
    return Result(EXIT_OK, {"ok": True, "journal": journal, "message": f"step '{args.name}' recorded"},
                  f"migration {journal['id']}: step '{args.name}' recorded")


def copy_bytes(src_fd: int, dst_fd: int, length: int) -> None:
    """length bytes from offset 0: copy_file_range (in the kernel), read/write where it is refused."""
    off = 0
    try:
        while off < length:
            n = os.copy_file_range(src_fd, dst_fd, length - off, off, off)
            if n <= 0:
                break
            off += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF):
            raise
    while off < length:
        chunk = os.pread(src_fd, min(8 << 20, length - off), off)
        if not chunk:
            break
        done = 0
        while done < len(chunk):
            done += os.pwrite(dst_fd, chunk[done:], off + done)
        off += len(chunk)
    if off != length:
        raise OSError(errno.EIO, f"short copy: {off} of {length} bytes")
    os.ftruncate(dst_fd, length)


def file_version(st: os.stat_result) -> list:
    """What changes when a file's content is written: inode, size, mtime (not ctime: a hard link of
    the file, like the swap's own pre-swap link, changes it)."""
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def fsync_quietly(path: str) -> None:
    """fsync in the background; a failure shows in the fsync that must succeed (the swap's)."""
    with contextlib.suppress(OSError, ToolError):
        fsync_file(path)


def fsync_file(path: str, ident: tuple[int, int] | None = None) -> None:
    """fsync of a regular file, never through a symlink; ident = (dev, inode) it must be."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if ident is not None and (st.st_dev, st.st_ino) != ident:
            raise ToolError(f"{path} was replaced by another file while the tool worked on it", EXIT_FAILED, path=path)
        os.fsync(fd)
    finally:
        os.close(fd)


def mig_copy(cfg: dict, args, record: dict, sync: bool = True) -> Result:
    """<db>.migrating: a copy of the live file (writers stopped). sync=False leaves its fsync to the
    caller (migration run flushes it while the migration runs; the swap flushes it before the rename)."""
    journal = require_journal(cfg)
    db, copy, aside = journal_db(cfg, journal)
    files = migration_files(db, copy, aside)
    refuse_problems(files)
    if files["live"] is None:
        raise ToolError(f"the live database {db} does not exist", EXIT_FAILED)
    if files["swapped"]:
        raise ToolError(f"not copied: the swap was already done ({aside} holds the pre-swap database); "
                        "see moneytracker-db migration status", EXIT_FAILED)
    # The copy, its WAL and the migration's temp files (index builds sort there: SQLITE_TMPDIR) all
    # go to the data volume: ask for twice the live file (with its WAL) before touching anything.
    live_size = files["live"].st_size + sum(os.path.getsize(p) for p in sqlite_side_files(db) if os.path.isfile(p))
    old_copy = files["copy"].st_size if files["copy"] is not None else 0
    need, have = 2 * live_size + (64 << 20), free_bytes(os.path.dirname(db)) + old_copy
    if have < need:
        raise ToolError(f"not copied: the data volume has {human_size(have)} free, the copy and the migration need "
                        f"about {human_size(need)} (twice the live database); free space or grow the volume; "
                        "nothing changed", EXIT_FAILED, free_bytes=have, needed_bytes=need)
    busy = cfg["busy_timeout_ms"]
    t0 = time.monotonic()
    held = None  # the copy's descriptor, held open from its creation to its chown
    live_fd = None
    # The writers are stopped: after a TRUNCATE checkpoint the main file holds every committed
    # write. Under BEGIN IMMEDIATE (nobody else can write until the copy is made) its bytes are
    # copied in the kernel (copy_file_range: ~4x faster than the backup API at 1 GiB, and a
    # reflink where the filesystem has them), straight into the descriptor the tool created.
    src = sqlite3.connect(sqlite_uri(db, mode="rw"), uri=True, timeout=busy / 1000, isolation_level=None)
    try:
        src.execute(f"PRAGMA busy_timeout={int(busy)}")
        try:
            row = src.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if row and row[0] == 1:
                raise ToolError(f"{NO_WRITER} ({db}: checkpoint busy); nothing changed", EXIT_FAILED)
            journal_mode = str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            src.execute("BEGIN IMMEDIATE")
            checkpoint_seconds = round(time.monotonic() - t0, 3)
        except sqlite3.OperationalError as exc:
            raise ToolError(f"{NO_WRITER} ({db}: {exc}); nothing changed", EXIT_FAILED) from exc
        wal = lstat_or_none(db + "-wal")
        if wal is not None and wal.st_size > 0:
            raise ToolError(f"{NO_WRITER} ({db}: a write came in after the checkpoint); nothing changed", EXIT_FAILED)
        page_size = int(src.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(src.execute("PRAGMA page_count").fetchone()[0])
        live_fd = os.open(db, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        live_st = os.fstat(live_fd)
        length = page_size * page_count
        if live_st.st_size < length:
            raise ToolError(f"{db} is {live_st.st_size} bytes, its header says {page_count} pages of {page_size}: "
                            "not copied (run moneytracker-db check --quick)", EXIT_FAILED)
        remove_quietly(copy)
        remove_side_files(copy)
        held = create_private(copy)[0]
        t1 = time.monotonic()
        try:
            copy_bytes(live_fd, held, length)
            bytes_seconds = round(time.monotonic() - t1, 3)
        except OSError as exc:
            raise ToolError(f"copy of {db} to {copy} failed: {exc}", EXIT_FAILED) from exc
        if sync:
            os.fsync(held)
        live_st = os.fstat(live_fd)  # still under the write lock: what the swap compares with
    except BaseException:
        if held is not None:  # never leave a half-made copy behind
            os.close(held)
            remove_quietly(copy)
            remove_side_files(copy)
        raise
    finally:
        if live_fd is not None:
            os.close(live_fd)
        with contextlib.suppress(sqlite3.Error):
            src.execute("ROLLBACK")
        src.close()
    try:
        header = os.pread(held, 100, 0)  # the header says WAL (bytes 18 and 19 == 2) like the original
        wal_header = len(header) >= 20 and header[18] == 2 and header[19] == 2
        if (journal_mode == "wal") != wal_header:
            raise ToolError(f"the copy {copy} has a {'WAL' if wal_header else 'rollback journal'} header, the live "
                            f"database is in journal mode {journal_mode}", EXIT_FAILED)
        copy_mode = journal_mode
        live = files["live"]
        set_owner_held(held, copy, live.st_uid, live.st_gid, stat.S_IMODE(live.st_mode))
        fsync_path(os.path.dirname(copy))
    except BaseException:
        remove_quietly(copy)
        raise
    finally:
        os.close(held)
    after = lstat_or_none(db)
    if after is None or file_version(after) != file_version(live_st):
        remove_quietly(copy)
        raise ToolError(f"{NO_WRITER} ({db} changed while it was copied); nothing changed", EXIT_FAILED)
    size = os.lstat(copy).st_size
    seconds = round(time.monotonic() - t0, 3)
    add_step(journal, "copied", size=size, page_count=page_count, seconds=seconds, checkpoint_seconds=checkpoint_seconds,
             bytes_seconds=bytes_seconds, live=file_version(live_st))
    write_journal(cfg, journal)
    LOG.info("migration: %s copied %s to %s (%s, %ss)", journal['id'], db, copy, human_size(size), seconds)
    return Result(EXIT_OK, {"ok": True, "copy": copy, "database": db, "size": size, "page_count": page_count,
                            "journal_mode": copy_mode, "seconds": seconds, "checkpoint_seconds": checkpoint_seconds,
                            "bytes_seconds": bytes_seconds, "journal": journal,
                            "message": f"copied {db} to {copy}"},
                  f"copied {db}\n  to {copy} ({human_size(size)}, {page_count} pages, {seconds}s)")


def check_migrated_copy(path: str, expect_schema: str, busy_ms: int) -> dict:
    """quick_check, foreign_key_check and alembic_version of the copy. Failures listed by name."""
    checks: dict = {"quick_check": None, "foreign_key_check": None, "schema": None, "failed": []}

    # quick_check reads every page; it runs on its own connection in a thread beside the foreign
    # key check (sqlite3 releases the GIL while it works): about half the time at 1 GiB.
    def quick_check() -> None:
        qc = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=busy_ms / 1000)
        try:
            qc.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            checks["quick_check"] = [r[0] for r in qc.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            checks["quick_check"] = [f"error: {exc}"]
        finally:
            qc.close()

    worker = threading.Thread(target=quick_check, name="quick_check")
    con = sqlite3.connect(sqlite_uri(path, mode="rw"), uri=True, timeout=busy_ms / 1000)
    try:
        con.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        worker.start()
        try:
            fk = [{"table": r[0], "rowid": r[1], "parent": r[2], "fkid": r[3]}
                  for r in con.execute("PRAGMA foreign_key_check").fetchmany(100)]
        except sqlite3.DatabaseError as exc:
            fk = [{"table": "?", "rowid": None, "parent": f"error: {exc}", "fkid": None}]
        worker.join()
        rows = checks["quick_check"] or ["error: no answer"]
        if rows != ["ok"]:
            checks["failed"].append(f"quick_check: {first_problems(rows)}")
        checks["foreign_key_check"] = fk
        if fk:
            checks["failed"].append(f"foreign_key_check: {len(fk)}{'+' if len(fk) == 100 else ''} violation(s), "
                                    f"first: {fk[0]['table']} rowid {fk[0]['rowid']} -> {fk[0]['parent']}")
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").fetchone():
                checks["failed"].append("schema: the alembic_version table is missing")
            else:
                versions = [r[0] for r in con.execute('SELECT "version_num" FROM "alembic_version"')]
                checks["schema"] = versions[0] if len(versions) == 1 else versions
                if versions != [expect_schema]:
                    checks["failed"].append(f"schema: alembic_version is {versions or 'empty'}, expected {expect_schema}")
        except sqlite3.DatabaseError as exc:
            checks["failed"].append(f"schema: cannot read alembic_version: {exc}")
    finally:
        if worker.is_alive():
            worker.join()
        con.close()
    checks["ok"] = not checks["failed"]
    return checks


def mig_swap(cfg: dict, args, record: dict) -> Result:
    journal = require_journal(cfg)
    db, copy, aside = journal_db(cfg, journal)
    files = migration_files(db, copy, aside)
    refuse_problems(files)
    if files["swapped"]:
        raise ToolError(f"nothing to swap: the swap was already done ({aside} holds the pre-swap database)",
                        EXIT_FAILED, aside=aside)
    if files["copy"] is None:
        raise ToolError(f"nothing to swap: there is no copy {copy} (run migration copy first)", EXIT_FAILED)
    if files["live"] is None:
        raise ToolError(f"the live database {db} does not exist", EXIT_FAILED)
    busy = cfg["busy_timeout_ms"]
    t0 = time.monotonic()
    checked = files["copy"]
    checks = check_migrated_copy(copy, args.expect_schema, busy)
    if not checks["ok"]:
        add_step(journal, "checks failed", checks=checks["failed"])
        write_journal(cfg, journal)
        raise ToolError(f"the migrated copy {copy} FAILED its checks: {'; '.join(checks['failed'])}; the live "
                        f"database {db} was not touched", EXIT_FAILED, checks=checks, database=db, copy=copy)
    checkpoint_truncate(copy, busy, "the copy still has a writer (is the migration container still running?)")
    remove_side_files(copy)
    # Every write answered before the copy is in it; one made to the live file since would be lost
    # by the swap: the live file (and its WAL) must be as the copy left it.
    copied_live = next((st["live"] for st in reversed(journal.get("steps", []))
                        if st.get("step") == "copied" and isinstance(st.get("live"), list)), None)
    live_now, wal_now = lstat_or_none(db), lstat_or_none(db + "-wal")
    if copied_live is not None and (live_now is None or file_version(live_now) != copied_live
                                    or (wal_now is not None and wal_now.st_size > 0)):
        add_step(journal, "live database changed", set_state=False)
        write_journal(cfg, journal)
        raise ToolError(f"not swapped: the live database {db} was written after it was copied (a writer ran during "
                        "the migration: is the backend stopped?); the live database was not touched, nothing is "
                        "lost", EXIT_FAILED, database=db, copy=copy)
    checkpoint_truncate(db, busy, NO_WRITER)
    fsync_file(copy, (checked.st_dev, checked.st_ino))  # cheap when migration run flushed it meanwhile
    add_step(journal, "swapping", aside=aside)
    write_journal(cfg, journal)
    directory = os.path.dirname(db)
    a = lstat_or_none(aside)
    if a is not None:
        live = os.lstat(db)
        if stat.S_ISREG(a.st_mode) and (a.st_dev, a.st_ino) == (live.st_dev, live.st_ino):
            os.unlink(aside)  # a link of the live file left by an interrupted swap
        else:
            raise ToolError(f"not swapped: {aside} exists and is not the live database (left by an earlier "
                            "migration?); move it away after checking what it is; the live database was not "
                            "touched", EXIT_FAILED, aside=aside)
    os.link(db, aside)
    fsync_path(directory)
    now_copy = lstat_or_none(copy)
    if now_copy is None or not stat.S_ISREG(now_copy.st_mode) or \
            (now_copy.st_dev, now_copy.st_ino) != (checked.st_dev, checked.st_ino):
        os.unlink(aside)
        fsync_path(directory)
        raise ToolError(f"not swapped: {copy} was replaced by another file or a symlink after its checks; the live "
                        f"database {db} was not touched", EXIT_FAILED)
    remove_side_files(db)
    os.replace(copy, db)
    fsync_path(directory)
    seconds = round(time.monotonic() - t0, 3)
    add_step(journal, "swapped", seconds=seconds)
    write_journal(cfg, journal)
    LOG.warning("migration: %s swapped the migrated copy into %s (schema %s); pre-swap file %s", journal['id'], db,
                args.expect_schema, aside, extra={"stderr": False})
    return Result(EXIT_OK, {"ok": True, "checks": checks, "database": db, "aside": aside, "seconds": seconds,
                            "journal": journal, "message": f"swapped: {db} is the migrated copy"},
                  f"swapped: {db} is now the migrated copy (schema {args.expect_schema}; quick_check ok, "
                  f"foreign keys ok)\n  the pre-swap database: {aside}")


def mig_status(cfg: dict, args) -> Result:
    journal = read_journal(cfg)
    db, copy, aside = journal_db(cfg, journal)
    record = read_lock(cfg)
    state = lock_state(record)
    public = public_lock(record)
    data = {"ok": True, "journal": journal, "unfinished": journal is not None, "database": db,
            "copy": copy, "aside": aside, "swapped": False, "copy_exists": False, "aside_exists": False,
            "live_schema": None, "problems": [],
            "lock": {**(public or {}), "state": state, "lock": public},
            "lock_is_journals": bool(journal and record and lock_record_id(record)
                                     and lock_record_id(record) == journal.get("token_id"))}
    data["engine"] = cfg["engine"]
    if cfg["engine"] == "postgres":
        # Asked only with a journal open (a no-op deploy's state read stays one local read): the
        # schema PostgreSQL committed says whether the migration's transaction did.
        if journal:
            try:
                data["live_schema"] = pg_schema_version(cfg)
            except ToolError as exc:
                data["problems"].append(str(exc))
            data["swapped"] = (data["live_schema"] is not None and data["live_schema"] == journal.get("to")
                               and journal.get("to") != journal.get("from"))
        data["migrated"] = data["swapped"]
    elif db:
        files = migration_files(db, copy, aside)
        data.update(swapped=files["swapped"], copy_exists=files["copy"] is not None,
                    aside_exists=files["aside"] is not None, problems=files["problems"],
                    live_schema=schema_version(db, cfg["busy_timeout_ms"]))
    lines = [journal_text(journal) if journal else "no unfinished migration"]
    if cfg["engine"] == "postgres":
        if journal:
            lines.append(f"  PostgreSQL: schema {data['live_schema'] or '?'}: the migration's transaction "
                         + ("COMMITTED" if data["swapped"] else "did not commit" if not data["problems"] else "unknown"))
    elif journal or data["copy_exists"] or data["aside_exists"]:
        lines.append(f"  swapped: {'YES' if data['swapped'] else 'no'}; copy {'present' if data['copy_exists'] else 'absent'}; "
                     f"pre-swap file {'present' if data['aside_exists'] else 'absent'}")
    if cfg["engine"] != "postgres":
        lines.append(f"  live database: {db or '(none)'}, schema {data['live_schema'] or '?'}")
    lines.append(f"  maintenance lock: {state}" + (f" by {holder_text(record)} (id {lock_record_id(record)})" if record else "")
                 + (" = the journal's run" if data["lock_is_journals"] else ""))
    lines += [f"  PROBLEM: {p}" for p in data["problems"]]
    return Result(EXIT_OK, data, "\n".join(lines))


def mig_adopt(cfg: dict, args) -> Result:
    journal = read_journal(cfg)
    if journal is None:
        raise ToolError("no unfinished migration (nothing to adopt)", EXIT_FAILED)
    ttl = args.ttl if args.ttl is not None else cfg["lock_ttl_seconds"]
    if ttl < 1:
        raise UsageError("--ttl must be >= 1")
    ensure_dir(cfg["state_dir"])
    record, ident = read_lock_file(cfg)
    state = lock_state(record)
    if state == "held" and lock_record_id(record) != journal.get("token_id"):
        raise ToolError(f"not adopted: the maintenance lock is held by {holder_text(record)} "
                        f"(id {lock_record_id(record)}), not by the run of {journal_text(journal)}",
                        EXIT_LOCKED, lock=public_lock(record), state=state)
    new = new_lock_record(args.owner, args.host, args.play, f"adopted migration {journal.get('id')}", ttl,
                          args.user, args.controller_pid)
    tmp = write_lock_temp(cfg, new)
    try:
        if record is None:
            try:
                os.link(tmp, lock_path(cfg))
            except FileExistsError:
                raise lock_error(read_lock(cfg) or {}) from None
        else:
            cur = lstat_or_none(lock_path(cfg))
            if cur is None or (cur.st_dev, cur.st_ino) != ident:
                raise ToolError("not adopted: the maintenance lock changed while it was being adopted; "
                                "look again (moneytracker-db migration status)", EXIT_LOCKED)
            os.replace(tmp, lock_path(cfg))
    finally:
        remove_quietly(tmp)
    fsync_path(cfg["state_dir"])
    previous = journal.get("token_id")
    journal["token_id"] = new["id"]
    add_step(journal, "adopted", set_state=False, owner=args.owner, host=args.host, play=args.play,
             user=new["user"], controller_pid=args.controller_pid, token_id=new["id"],
             previous_token_id=previous, previous_lock=state,
             previous_holder=holder_text(record) if record else None)
    write_journal(cfg, journal)
    refresh_textfile(cfg)
    LOG.warning("migration: %s adopted by %s (the lock was %s%s)", journal['id'], holder_text(new), state,
                ', held by ' + holder_text(record) if record else '', extra={"stderr": False})
    return Result(EXIT_OK, {"ok": True, "token": new["token"], "lock": public_lock(new), "journal": journal,
                            "previous_lock": public_lock(record), "previous_lock_state": state,
                            "message": f"adopted {journal_text(journal)}"}, new["token"])


def pg_mig_revert(cfg: dict, journal: dict) -> Result:
    """PostgreSQL: nothing to undo while the migration's transaction did not commit (its
    container is gone, so is its connection); after it committed, only a restore goes back."""
    live = pg_schema_version(cfg)
    if live == journal.get("to") and journal.get("to") != journal.get("from"):
        raise ToolError(f"cannot revert: PostgreSQL's database is at schema {live}, the migration's target (its "
                        "transaction committed); finish it (deploy.yml starts the new release), or go back to the "
                        f"backup taken before it ({journal.get('backup') or 'see moneytracker-db list'}) with "
                        "restore.yml (docs/runbooks/roll-back-a-release.md)", EXIT_FAILED, live_schema=live)
    text = f"the migration's transaction never committed: the database is at schema {live or '?'}, unchanged"
    add_step(journal, "reverted", how="transaction rolled back", live_schema=live)
    write_journal(cfg, journal)
    LOG.warning("migration: %s reverted: %s", journal['id'], text, extra={"stderr": False})
    return Result(EXIT_OK, {"ok": True, "reverted": "transaction rolled back", "live_schema": live, "database": None,
                            "journal": journal, "message": text}, text)


def mig_revert(cfg: dict, args, record: dict) -> Result:
    journal = require_journal(cfg)
    if cfg["engine"] == "postgres":
        return pg_mig_revert(cfg, journal)
    db, copy, aside = journal_db(cfg, journal)
    files = migration_files(db, copy, aside)
    refuse_problems(files)
    directory = os.path.dirname(db)
    if files["swapped"]:
        if files["live"] is not None:
            checkpoint_truncate(db, cfg["busy_timeout_ms"], NO_WRITER)
        add_step(journal, "reverting", swapped=True)
        write_journal(cfg, journal)
        remove_side_files(db)
        os.replace(aside, db)
        fsync_path(directory)
        how, text = "swap undone", "swap undone: the database is back exactly as it was before the swap"
    else:
        removed = []
        if files["copy"] is not None:
            os.unlink(copy)
            removed.append(copy)
        removed += remove_side_files(copy)
        if files["aside_is_live"]:
            os.unlink(aside)
            removed.append(aside)
        fsync_path(directory)
        how, text = "copy removed", "the live database was never changed"
        if files["aside"] is not None and not files["aside_is_live"]:
            text += f" (an unrelated {aside} was left alone)"
    live_schema = schema_version(db, cfg["busy_timeout_ms"])
    add_step(journal, "reverted", how=how, live_schema=live_schema)
    write_journal(cfg, journal)
    LOG.warning("migration: %s reverted: %s (schema %s)", journal['id'], text, live_schema, extra={"stderr": False})
    return Result(EXIT_OK, {"ok": True, "reverted": how, "live_schema": live_schema, "database": db,
                            "journal": journal, "message": text},
                  f"{text}\n  {db}: schema {live_schema or '?'}")


def mig_finish(cfg: dict, args, record: dict) -> Result:
    journal = require_journal(cfg)
    result = args.result
    if cfg["engine"] == "postgres":
        live = pg_schema_version(cfg)
        migrated = live == journal.get("to")
        if result == "done" and not migrated:
            raise ToolError(f"cannot finish as done: PostgreSQL's database is at schema {live or '?'}, not "
                            f"{journal.get('to')} (the migration's transaction did not commit); revert it instead",
                            EXIT_FAILED, live_schema=live)
        if result == "reverted" and migrated and journal.get("to") != journal.get("from"):
            raise ToolError(f"cannot finish as reverted: PostgreSQL's database is at schema {live}, the migration's "
                            "target (its transaction committed)", EXIT_FAILED, live_schema=live)
        add_step(journal, f"finishing {result}", live_schema=live)
        write_journal(cfg, journal)
        return mig_close(cfg, args, journal, result)
    db, copy, aside = journal_db(cfg, journal)
    files = migration_files(db, copy, aside)
    refuse_problems(files)
    resumed = journal.get("state") == f"finishing {result}"  # a finish that was interrupted
    if result == "done":
        if not files["swapped"] and not (resumed and files["copy"] is None and files["aside"] is None):
            raise ToolError(f"cannot finish as done: the migrated copy was not swapped in (copy "
                            f"{'present' if files['copy'] else 'absent'}, pre-swap file "
                            f"{'present' if files['aside'] else 'absent'}); revert it instead", EXIT_FAILED)
        add_step(journal, f"finishing {result}")
        write_journal(cfg, journal)
        if files["aside"] is not None:
            os.unlink(aside)
            fsync_path(os.path.dirname(db))
    else:
        if files["swapped"] or files["copy"] is not None:
            raise ToolError("cannot finish as reverted: " + ("the migrated copy is swapped in" if files["swapped"]
                            else f"the copy {copy} is still there") + "; run migration revert first", EXIT_FAILED)
        add_step(journal, f"finishing {result}")
        write_journal(cfg, journal)
        if files["aside_is_live"]:
            os.unlink(aside)
            fsync_path(os.path.dirname(db))
    return mig_close(cfg, args, journal, result)


def mig_close(cfg: dict, args, journal: dict, result: str) -> Result:
    """The journal, finished, into the history (the newest MIGRATION_HISTORY_KEEP kept)."""
    t = now()
    journal.update(state=result, result=result, finished=iso(t), finished_epoch=round(t, 3), message=args.message)
    add_step(journal, result, message=args.message)
    hdir = history_dir(cfg)
    ensure_dir(hdir)
    target = os.path.join(hdir, f"{journal['id']}.json")
    n = 1
    while os.path.exists(target):
        with contextlib.suppress(OSError, ValueError):
            with open(target, encoding="utf-8") as fh:
                if json.load(fh).get("started") == journal.get("started"):
                    break  # the same migration (an interrupted finish): write it again
        n += 1
        target = os.path.join(hdir, f"{journal['id']}.{n}.json")
    atomic_write(target, (json.dumps(journal, indent=1, sort_keys=True) + "\n").encode(), 0o600)
    os.unlink(journal_path(cfg))
    fsync_path(cfg["state_dir"])
    entries = []
    for name in os.listdir(hdir):
        path = os.path.join(hdir, name)
        st = lstat_or_none(path)
        if name.endswith(".json") and not name.startswith(".") and st and stat.S_ISREG(st.st_mode):
            entries.append((st.st_mtime, name, path))
    for _mtime, _name, path in sorted(entries, reverse=True)[MIGRATION_HISTORY_KEEP:]:
        remove_quietly(path)
    LOG.info("migration: %s finished: %s%s", journal['id'], result, f" ({args.message})" if args.message else "")
    return Result(EXIT_OK, {"ok": True, "result": result, "history": target, "journal": journal,
                            "message": f"migration {journal['id']} finished: {result}"},
                  f"migration {journal['id']} finished: {result}; journal kept as {target}")


def mig_run(cfg: dict, args, record: dict) -> Result:
    """The maintenance window's work in one process (each play task costs the window ~0.6 s):
    stop the writers (stop_command, with --stop-writers), copy, run the migration command on the
    copy (time-limited), then check the copy and swap it in. Every step is in the journal first."""
    argv = list(args.command or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("migration run needs the migration command after --")
    journal = require_journal(cfg)
    if args.stop_writers and not cfg["stop_command"]:
        raise UsageError("--stop-writers needs stop_command (config or --stop-command); nothing changed")
    activate = getattr(args, "activate_compose", None)
    if activate and not isinstance(journal.get("target_compose"), str):
        raise UsageError("--activate-compose needs the journal's target_compose (migration begin --set "
                         "target_compose=PATH); nothing changed")
    if activate and lstat_or_none(journal["target_compose"]) is None:
        raise ToolError(f"the journal's target_compose {journal['target_compose']} does not exist; nothing changed",
                        EXIT_FAILED)
    if args.stop_writers:
        add_step(journal, "writers stopping")
        write_journal(cfg, journal)
        t = time.monotonic()
        run_hook(cfg["stop_command"], "stop_command (stopping the database writers)")
        stop_seconds = round(time.monotonic() - t, 3)
    else:
        stop_seconds = None
    copied = mig_copy(cfg, args, record, sync=False)
    # The copy's pages reach the disk while the migration runs (the swap's own fsync is then cheap).
    flush = threading.Thread(target=fsync_quietly, args=(copied.data["copy"],), name="flush-copy", daemon=True)
    flush.start()
    journal = require_journal(cfg)
    add_step(journal, "migrating", container=args.container)
    write_journal(cfg, journal)
    t = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, check=False)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except FileNotFoundError as exc:
        raise ToolError(f"the migration command was not found: {argv[0]}", EXIT_FAILED) from exc
    except subprocess.TimeoutExpired as exc:
        timed_out, rc = True, 124
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        if args.container and shutil.which("docker"):
            # The client is gone; its container is not: stop it writing to the copy.
            subprocess.run(["docker", "rm", "--force", args.container], capture_output=True, timeout=120,
                           check=False)
    migrate_seconds = round(time.monotonic() - t, 3)
    output = {"migration_rc": rc, "migration_stdout": out[-4000:], "migration_stderr": err[-6000:],
              "migration_seconds": migrate_seconds, "migration_timed_out": timed_out}
    if rc != 0:
        journal = require_journal(cfg)
        add_step(journal, "migration failed", rc=rc, timed_out=timed_out)
        write_journal(cfg, journal)
        what = f"killed after {args.timeout:g} s" if timed_out else f"exit {rc}"
        raise ToolError(f"the migration on the copy failed ({what}); the live database was not touched: "
                        f"{one_line(err or out)[-600:]}", EXIT_FAILED, **output)
    flush.join()
    swapped = mig_swap(cfg, args, record)
    text = f"{copied.text}\nmigration: exit 0 in {migrate_seconds} s\n{swapped.text}"
    if activate:
        # The new release's compose file becomes the active one with the database it belongs to.
        journal = require_journal(cfg)
        target = journal["target_compose"]
        try:
            with open(target, "rb") as fh:
                atomic_write(activate, fh.read(), 0o640)
        except OSError as exc:
            raise ToolError(f"swapped, but the new release's compose file {target} could not replace {activate}: "
                            f"{exc}; the previous release goes back with migration revert", EXIT_FAILED,
                            swapped=True, **output) from exc
        add_step(journal, "compose activated", set_state=False, path=activate)
        write_journal(cfg, journal)
        text += f"\n{activate} is now {target}"
    data = {**swapped.data, **output, "copy_seconds": copied.data.get("seconds"),
            "stop_seconds": stop_seconds, "copy": copied.data.get("copy"), "size": copied.data.get("size"),
            "compose_activated": activate or None,
            "message": f"migrated a copy and swapped it in: {swapped.data.get('database')}"}
    data["seconds"] = round((stop_seconds or 0) + (copied.data.get("seconds") or 0) + migrate_seconds
                            + (swapped.data.get("seconds") or 0), 3)
    return Result(EXIT_OK, data, text)


MIGRATION_ACTIONS = {"begin": mig_begin, "step": mig_step, "copy": mig_copy, "swap": mig_swap,
                     "run": mig_run, "revert": mig_revert, "finish": mig_finish}


def cmd_migration(cfg: dict, args) -> Result:
    action = args.migration_action
    if action == "status":
        return mig_status(cfg, args)
    wait = getattr(args, "jobs_wait", None)
    wait = 600.0 if wait is None else wait
    if action == "adopt":
        with jobs_lock(cfg, "migration adopt", wait):
            return mig_adopt(cfg, args)
    if action not in MIGRATION_ACTIONS:
        raise UsageError("migration needs one of: begin, step, copy, run, swap, status, adopt, revert, finish")
    if cfg["engine"] == "postgres" and action in ("copy", "swap", "run"):
        raise UsageError(f"migration {action} is for SQLite (a copy migrated and swapped in); on PostgreSQL the "
                         "migration runs in place in one transaction: begin, step, revert and finish keep its journal")
    require_token(cfg, args.lock_token)
    with jobs_lock(cfg, f"migration {action}", wait):
        record = require_token(cfg, args.lock_token)  # it may have been broken while we waited
        return MIGRATION_ACTIONS[action](cfg, args, record)


# --------------------------------------------------------------------------- CLI


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def common_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("common options (each overrides the config file key of the same name)")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    g.add_argument("--config", metavar="PATH", help=f"config file (default {DEFAULT_CONFIG}; env {CONFIG_ENV})")
    g.add_argument("--database", metavar="PATH")
    g.add_argument("--volume", metavar="NAME")
    g.add_argument("--database-name", metavar="NAME")
    g.add_argument("--backup-dir", metavar="PATH")
    g.add_argument("--state-dir", metavar="PATH")
    g.add_argument("--lock-ttl-seconds", type=int, metavar="S")
    g.add_argument("--busy-timeout-ms", type=int, metavar="MS")
    g.add_argument("--compression", choices=("auto", "zstd", "gzip"))
    g.add_argument("--retention-daily", type=int, metavar="N")
    g.add_argument("--retention-weekly", type=int, metavar="N")
    g.add_argument("--retention-monthly", type=int, metavar="N")
    g.add_argument("--stop-command", metavar="ARGV", help="JSON list or shell words")
    g.add_argument("--start-command", metavar="ARGV", help="JSON list or shell words")
    g.add_argument("--textfile-dir", metavar="PATH")
    g.add_argument("--offsite-path", metavar="PATH")
    g.add_argument("--offsite-rsync", metavar="DEST")
    g.add_argument("--db-owner", metavar="UID:GID[:MODE]")
    g.add_argument("--releases-dir", metavar="PATH",
                   help="the app's release history (<dir>/*/release.json); its backups are never pruned")
    return p


def job_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--lock-token", metavar="T", help="run under the maintenance lock held with this token")
    p.add_argument("--jobs-wait", type=float, metavar="S",
                   help="wait up to S seconds for another running job (default 0; 600 with --lock-token)")
    return p


def build_parser() -> Parser:
    common = common_options()
    jobopt = job_options()
    parser = Parser(prog=TOOL, description="Backups, checks, restores and the maintenance lock for the "
                                           "MoneyTracker SQLite database.",
                    epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                    parents=[common])
    parser.add_argument("--version", action="version", version=f"{TOOL} {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def add(name, func, help_text, parents=(common,)):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=list(parents),
                           epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("backup", cmd_backup, "verified online backup (backup API in one step) into backup_dir",
            (common, jobopt))
    p.add_argument("--allow-missing", action="store_true", help="no database yet: exit 0 with skipped")
    p.add_argument("--label", help="free text stored in the manifest (e.g. pre-migration)")
    p.add_argument("--no-offsite", action="store_true", help="do not copy this backup offsite")

    p = add("check", cmd_check, "quick_check of the live db (default) or full check of the newest backup",
            (common, jobopt))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="PRAGMA quick_check on the live database (default)")
    mode.add_argument("--full", action="store_true",
                      help="integrity_check + foreign_key_check of the newest verified backup")
    p.add_argument("--allow-missing", action="store_true", help="no database yet: exit 0 with skipped (--quick)")

    p = add("prune", cmd_prune, "delete backups no retention tier keeps", (common, jobopt))
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    p = add("restore", cmd_restore, "restore a verified backup over the live database (needs --yes)")
    p.add_argument("--backup", metavar="PATH",
                   help="backup file (default: the newest verified); engine postgres: a backup label "
                        "(to its consistent point)")
    p.add_argument("--target-time", metavar="TIME",
                   help="engine postgres: recover to this time (ISO 8601 with a zone, e.g. 2026-12-01T14:17:00Z); "
                        "default: the latest")
    p.add_argument("--yes", action="store_true", help="really do it (without: print the plan, exit 3)")
    p.add_argument("--lock-token", metavar="T", help="the maintenance lock is already held with this token")
    p.add_argument("--writers-stopped", action="store_true",
                   help="no stop_command: confirm the database writers are already stopped")
    p.add_argument("--play", metavar="P", help="name recorded in the lock taken by the restore")
    p.add_argument("--jobs-wait", type=float, metavar="S", help="wait up to S seconds for a running job (600)")

    p = add("status", cmd_status, "job results, newest backup, free space, lock state")
    p.add_argument("--textfile", action="store_true", help="also rewrite the node-exporter textfile")

    add("list", cmd_list, "backups with time, size, verified, and the tier that keeps them")
    p = add("compare", cmd_compare, "what a restore of a backup would lose (per table: live rows, backup rows, "
                                    "ids written after it); read-only")
    p.add_argument("--backup", metavar="PATH", help="backup file (default: the newest verified)")
    p.add_argument("--target-time", metavar="TIME", help="engine postgres: the point a restore would go back to "
                   "(ISO 8601 with a zone); lists the rows written after it by their commit time")
    add("config", cmd_config, "check the configuration and print it as the tool reads it (bad: exit 2)")

    p = add("lock", cmd_lock, "the maintenance lock: acquire, release, status, break")
    lsub = p.add_subparsers(dest="lock_action", metavar="ACTION", parser_class=Parser)
    a = lsub.add_parser("acquire", parents=[common], help="take the lock; prints the token",
                        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--owner", required=True, help="who (e.g. migration, operator name)")
    a.add_argument("--host", help="where the holder runs (default: this host name)")
    a.add_argument("--play", default="manual", help="which play or procedure")
    a.add_argument("--ttl", type=int, metavar="S", help="seconds until the lock is stale (lock_ttl_seconds)")
    a.add_argument("--wait", type=float, default=0.0, metavar="S", help="poll up to S seconds while it is held")
    a.add_argument("--reason", metavar="R")
    a.add_argument("--user", metavar="U", help="who runs the play (default: $USER, else the login name)")
    a.add_argument("--controller-pid", type=int, metavar="N", help="pid of the controller's ansible-playbook")
    r = lsub.add_parser("release", parents=[common], help="release the lock held with this token")
    r.add_argument("--token", required=True)
    lsub.add_parser("status", parents=[common], help="free (0) / held (3) / stale (4) and the owner record")
    b = lsub.add_parser("break", parents=[common], help="forced release (logged); use via unlock.yml")
    b.add_argument("--force", action="store_true")
    b.add_argument("--reason", metavar="R")
    b.add_argument("--id", metavar="ID", help="break only the lock with this id (as `lock status` showed it)")

    p = add("migration", cmd_migration, "the migration journal; migrate a copy of the live database and swap it in")
    msub = p.add_subparsers(dest="migration_action", metavar="ACTION", parser_class=Parser)

    def maction(name, help_text, token=True):
        m = msub.add_parser(name, parents=[common], help=help_text, description=help_text,
                            epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        if token:
            m.add_argument("--lock-token", required=True, metavar="T", help="the maintenance lock's token")
        if name != "status":
            m.add_argument("--jobs-wait", type=float, metavar="S",
                           help="wait up to S seconds for a running backup/check (default 600)")
        return m

    m = maction("begin", "open the journal (refused while an unfinished one exists)")
    m.add_argument("--id", required=True, help="the migration's id (names its history file)")
    m.add_argument("--from", dest="from_", required=True, metavar="A", help="schema before")
    m.add_argument("--to", required=True, metavar="B", help="schema after")
    m.add_argument("--set", action="append", metavar="KEY=VALUE", help="more facts to record (repeatable)")
    m = maction("step", "record a step (sets the journal's state)")
    m.add_argument("--name", required=True)
    m.add_argument("--set", action="append", metavar="KEY=VALUE", help="facts to merge into the journal")
    maction("copy", "copy the live database (writers stopped; checkpoint, then its bytes under the write "
                    "lock) to <db>.migrating")
    m = maction("swap", "check the migrated copy, keep the live file as <db>.pre-swap, rename the copy over it")
    m.add_argument("--expect-schema", required=True, metavar="B", help="alembic_version the copy must have")
    m = maction("run", "copy, run the migration command on the copy, check it and swap it in (one process: "
                       "the maintenance window's work)")
    m.add_argument("--expect-schema", required=True, metavar="B", help="alembic_version the copy must have")
    m.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds the migration may run (600)")
    m.add_argument("--container", metavar="NAME", help="the migration's container, removed when it times out")
    m.add_argument("--stop-writers", action="store_true", help="run stop_command first (stops the backend)")
    m.add_argument("--activate-compose", metavar="PATH",
                   help="after the swap, the journal's target_compose replaces PATH (atomic rename, 0640)")
    m.add_argument("command", nargs=argparse.REMAINDER, metavar="-- ARGV",
                   help="the migration command; it reaches the copy at <db>.migrating")
    maction("status", "the journal, what the files say (swapped?), the live schema and the lock (read-only)",
            token=False)
    m = maction("adopt", "take over the lock for an unfinished journal whose run is dead", token=False)
    m.add_argument("--owner", required=True)
    m.add_argument("--host", required=True)
    m.add_argument("--play", required=True)
    m.add_argument("--user", metavar="U", help="default: $USER, else the login name")
    m.add_argument("--controller-pid", type=int, metavar="N")
    m.add_argument("--ttl", type=int, metavar="S", help="seconds until the new lock is stale (lock_ttl_seconds)")
    maction("revert", "undo the swap (the pre-swap file goes back) or remove the copy")
    m = maction("finish", "close the journal (kept in state_dir/migrations/); the lock stays held")
    m.add_argument("--result", required=True, choices=("done", "reverted"))
    m.add_argument("--message", metavar="M")
    return parser


def emit(result: Result, json_mode: bool, command: str) -> None:
    if json_mode:
        data = {"command": command, **result.data, "exit_code": result.code}
        data.pop("_status", None)
        sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    elif result.text:
        sys.stdout.write(result.text.rstrip("\n") + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    json_mode = "--json" in argv
    command = next((a for a in argv if not a.startswith("-")), "?")
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        json_mode = bool(getattr(args, "json", False)) or json_mode
        command = args.command or "?"
        if command == "lock":
            command = f"lock {args.lock_action or ''}".strip()
        if command == "migration":
            command = f"migration {args.migration_action or ''}".strip()
        if not args.command:
            raise UsageError("a command is required: backup, check, prune, restore, status, list, compare, config, "
                             "lock, migration (see --help)")
        if args.command == "lock" and not args.lock_action:
            raise UsageError("lock needs one of: acquire, release, status, break (see lock --help)")
        if args.command == "migration" and not args.migration_action:
            raise UsageError("migration needs one of: begin, step, copy, swap, status, adopt, revert, finish "
                             "(see migration --help)")
        cfg = load_config(args)
        result = args.func(cfg, args)
    except Skip as exc:
        LOG.warning("%s: %s", command, exc.message, extra={"stderr": False})
        result = Result(exc.code, {**exc.details, "ok": False, "skipped": exc.message}, exc.message)
    except ToolError as exc:
        LOG.error("%s: FAILED: %s", command, one_line(exc.message))
        result = Result(exc.code, {**exc.details, "ok": False, "error": exc.message}, "")
    except OSError as exc:  # an I/O problem no step above turned into a clearer message
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
        LOG.error("%s: FAILED: %s", command, one_line(message))
        result = Result(EXIT_FAILED, {"ok": False, "error": message}, "")
    except KeyboardInterrupt:
        LOG.error("%s: FAILED: interrupted", command)
        result = Result(EXIT_FAILED, {"ok": False, "error": "interrupted"}, "")
    except Exception as exc:  # a bug: one clear line, then the traceback on stderr
        LOG.error("%s: FAILED: internal error: %s", command, one_line(repr(exc)))
        import traceback
        traceback.print_exc(file=sys.stderr)
        result = Result(EXIT_FAILED, {"ok": False, "error": f"internal error: {exc!r}"}, "")
    emit(result, json_mode, command)
    return result.code


if __name__ == "__main__":
    sys.exit(main())
