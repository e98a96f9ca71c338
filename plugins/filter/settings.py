# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""The roles' preflight rules, one filter per role: every problem at once, each naming the
variable, the value it got and the rule.

A role's preflight passes its values (a dict: every variable of the role by name, plus the few
internal values a rule needs, named with a leading underscore) and asserts the list is empty.
One task per role instead of one `assert` per rule: the rules are the same, a deploy with
nothing to change spends no time on a task per rule (issue 10), and an operator sees every
problem of an inventory in one run instead of one per run.

unknown_variables         "<name> is not a variable of the <role> role (did you mean ...?)"
app_settings_problems     the app role's rules (images pinned, sizes, numbers, ports, secret, ...)
docker_settings_problems  the docker role's rules (platform, Compose source, log rotation, ...)
moneytracker_db_settings_problems  the moneytracker_db role's rules (cron, directories, retention, ...)

Values given as `-e key=value` are strings: a number is checked to be digits before it is read.
A secret's value is never part of a message.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import posixpath
import re

from ansible_collections.moneytracker.deploy.plugins.filter.images import image_archive_name
from ansible_collections.moneytracker.deploy.plugins.filter.preflight import closest
from ansible_collections.moneytracker.deploy.plugins.filter.sizing import parse_mem, postgres_sizing
from ansible_collections.moneytracker.deploy.plugins.test.image_ref import pinned_image

_DIGITS = re.compile(r"^[0-9]+$")
_DURATION = re.compile(r"^(?=[0-9])([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$")
_SIZE = re.compile(r"^[1-9][0-9]*[kmg]$")


def _integer(problems, name, value, minimum, why=""):
    """Digits (a -e value is a string), then the floor."""
    if not _DIGITS.match(str(value)) or int(str(value)) < minimum:
        problems.append(f"{name} must be an integer >= {minimum}{why} (got '{str(value)}').")


def _json(value):
    try:
        return json.dumps(value)
    except TypeError:
        return json.dumps(str(value))


def unknown_variables(names, known, role, prefix):
    """The message for each name with the role's prefix that is none of its variables."""
    known = [str(k) for k in known]
    messages = []
    for name in sorted({str(n) for n in names} - set(known)):
        near = closest(name, known, prefix)
        messages.append(f"{name} is not a variable of the {role} role"
                        + (f" (did you mean {near}?)" if near else "") + ";")
    if messages:
        messages.append("rename or remove it: the role would ignore it (its variables are listed in "
                        "the role's README.md and meta/argument_specs.yml).")
    return [" ".join(messages)] if messages else []


# ---- app -----------------------------------------------------------------------------------------
def app_settings_problems(s):
    """The app role's rules. s: every app_* variable, plus _vcpus (the host's CPUs or None),
    _published_ports ({variable: port}), _env_reserved and _public_secret_sha256."""
    p = []
    for name in ("app_backend_image", "app_frontend_image", "app_edge_image"):
        if not pinned_image(s[name]):
            p.append(f"{name} must name an image pinned by tag or digest (name:tag or name@sha256:<64 hex>), "
                     f"not '{str(s[name])}' (no implicit or explicit :latest: a deploy must know what it runs).")

    for name in ("app_backend_mem_limit", "app_frontend_mem_limit", "app_backend_tmpfs_size",
                 "app_frontend_tmpfs_size", "app_edge_mem_limit", "app_edge_tmpfs_size"):
        size = parse_mem(s[name])
        if size is None or size < 6291456:
            p.append(f"{name} must be a memory size of at least 6m: a whole number with b, k, m or g "
                     f"(e.g. 512m), got '{str(s[name])}'.")

    vcpus = s.get("_vcpus")
    for name in ("app_backend_cpus", "app_frontend_cpus", "app_edge_cpus"):
        try:
            cpus = float(str(s[name]))
        except ValueError:
            cpus = 0.0
        if not 0 < cpus <= (float(vcpus) if vcpus else cpus):
            p.append(f"{name} must be > 0 and at most the host's {vcpus if vcpus else '?'} CPUs, "
                     f"got {str(s[name])}.")

    for name, minimum, why in (
            ("app_backend_pids_limit", 16, ""), ("app_frontend_pids_limit", 16, ""),
            ("app_edge_pids_limit", 16, ""), ("app_web_concurrency", 0, " (0 = computed)"),
            ("app_worker_memory_mb", 1, ""), ("app_worker_reserve_mb", 0, ""), ("app_log_max_file", 1, ""),
            ("app_healthcheck_retries", 1, ""), ("app_compose_wait_timeout", 10, ""),
            ("app_drain_timeout", 1, ""), ("app_maintenance_retry_after", 1, ""),
            ("app_releases_keep", 2, " (the previous release is kept for rollback)"),
            ("app_migration_lock_ttl", 60, ""), ("app_migration_lock_wait", 0, ""),
            ("app_migration_timeout", 10, "")):
        _integer(p, name, s[name], minimum, why)

    for name in ("app_migration_status_command", "app_migration_upgrade_command"):
        if not s[name]:
            p.append(f"{name} must not be empty (got {_json(s[name])}): it is the command the migration runs.")

    if not _SIZE.match(str(s["app_log_max_size"])):
        p.append(f"app_log_max_size must be a size like 10m (a whole number with k, m or g), "
                 f"got '{str(s['app_log_max_size'])}'.")

    for name in ("app_healthcheck_interval", "app_healthcheck_timeout", "app_healthcheck_start_period",
                 "app_healthcheck_start_interval"):
        if not _DURATION.match(str(s[name])):
            p.append(f"{name} must be a duration like 10s or 1m30s (got '{str(s[name])}').")

    secret = s.get("app_secret_key")
    if not isinstance(secret, str) or len(secret) < 32 or re.search("[\r\n']", secret):
        p.append("app_secret_key (the backend's secret key) is missing, shorter than 32 characters "
                 "or holds a line break or a single quote. Put it in a vault, e.g. "
                 "group_vars/moneytracker/vault.yml: vault_app_secret_key: "
                 "<python3 -c 'import secrets; print(secrets.token_urlsafe(48))'>.")
    elif (hashlib.sha256(secret.encode()).hexdigest() in s["_public_secret_sha256"]
          or re.search("change-?me", secret, re.IGNORECASE)):
        p.append("app_secret_key is a value published in this collection (the placeholder of "
                 "inventories/production/group_vars/moneytracker/vault.yml.example or an example from its "
                 "docs): anyone could forge the backend's CSRF tokens with it. Generate a new one with "
                 "python3 -c 'import secrets; print(secrets.token_urlsafe(48))' and set "
                 "vault_app_secret_key to it in your vault.")

    env = s["app_backend_env"]
    names = [str(n) for n in env] if isinstance(env, dict) else []
    bad = [n for n in names if not re.match(r"^[A-Z_][A-Z0-9_]*\Z", n)]
    reserved = list(s["_env_reserved"])
    taken = sorted({n for n in names if n in reserved or n.startswith("MONEYTRACKER_SECRET_KEY")})
    if not isinstance(env, dict) or bad or taken:
        p.append(f"app_backend_env names must match ^[A-Z_][A-Z0-9_]*$ (refused: {_json(bad)}) and must not "
                 f"be one the role sets itself, {', '.join(reserved)} or any MONEYTRACKER_SECRET_KEY* "
                 f"(refused: {_json(taken)}); the secret goes in app_secret_key.")

    try:
        ipaddress.ip_address(str(s["app_http_bind"]))
    except ValueError:
        p.append(f"app_http_bind must be an IP address such as 0.0.0.0 (every interface) or 127.0.0.1 "
                 f"(got '{str(s['app_http_bind'])}').")

    port_problems = []
    for name, minimum, why in (("app_http_port", 1, ""), ("app_https_port", 1, ""),
                               ("app_backend_debug_port", 0, " (0 = not published)")):
        value = str(s[name])
        if not _DIGITS.match(value) or not minimum <= int(value) <= 65535:
            port_problems.append(f"{name} must be a port number {minimum}-65535{why} (got '{value}').")
    p.extend(port_problems)
    if not port_problems:
        p.extend(ports_published_twice(s["_published_ports"]))

    p.extend(_postgres_problems(s))
    p.extend(_swarm_problems(s))

    if s["app_image_source"] == "archive" and not s["app_image_archive_dir"]:
        p.append("With app_image_source=archive set app_image_archive_dir to the controller directory "
                 "holding the image tarballs.")
    if s["app_registry_url"] and not (s["app_registry_username"] and s["app_registry_password"]):
        p.append(f"With app_registry_url set ('{s['app_registry_url']}'), set app_registry_username and "
                 f"app_registry_password too"
                 + (" (app_registry_username is empty)." if not s["app_registry_username"]
                    else " (app_registry_password is empty)."))
    # (On the controller, where the archives are.)
    if s["app_image_source"] == "archive" and s["app_image_archive_dir"]:
        folder = str(s["app_image_archive_dir"])
        images = ("app_backend_image", "app_frontend_image") + (
            ("app_postgres_image",) if s.get("app_database") == "postgres" else ())
        missing = [image_archive_name(s[name]) for name in images
                   if pinned_image(s[name]) and not os.path.isfile(os.path.join(folder, image_archive_name(s[name])))]
        if missing:
            p.append(f"app_image_source=archive, but these tarballs are missing on the controller: "
                     f"{', '.join(missing)} (in {folder}). Build them (examples/moneytracker/build.sh --save DIR) "
                     f"or fix app_image_archive_dir.")
    return p


def _swarm_problems(s):
    """app_orchestrator and, with swarm, its values (s as for app_settings_problems, plus _managers:
    the inventory group moneytracker_managers)."""
    orchestrator = s.get("app_orchestrator", "compose")
    if orchestrator not in ("compose", "swarm"):
        return [f"app_orchestrator must be compose or swarm (got '{str(orchestrator)}')."]
    if orchestrator != "swarm":
        return []
    p = []
    if s.get("app_database") != "postgres":
        p.append(f"app_orchestrator=swarm runs the backend on several hosts, which SQLite (one file on one host's "
                 f"volume) cannot serve: set app_database: postgres (got '{str(s.get('app_database'))}'; to keep "
                 f"this host's SQLite data, move it first with playbooks/move_to_postgres.yml on Compose).")
    if s.get("app_swarm_routing") not in ("dnsrr", "mesh"):
        p.append(f"app_swarm_routing must be dnsrr (DNS round robin and host-mode ports: no IPVS needed) or mesh "
                 f"(virtual IPs and the ingress routing mesh: needs IPVS), got '{str(s.get('app_swarm_routing'))}'.")
    for name, minimum in (("app_backend_replicas", 1), ("app_frontend_replicas", 1)):
        _integer(p, name, s.get(name), minimum, "")
    if not s.get("_managers"):
        p.append("app_orchestrator=swarm needs the inventory group moneytracker_managers (its first host creates "
                 "the swarm and runs PostgreSQL); the other hosts of moneytracker join as workers "
                 "(inventories/production/swarm.yml.example).")
    if s.get("app_tls_source", "none") != "none":
        p.append(f"app_tls_source={s.get('app_tls_source')} is not built for app_orchestrator=swarm yet (the edge "
                 f"would need the certificate on every edge node): use app_tls_source: none behind a TLS load "
                 f"balancer, or Compose.")
    debug_port = str(s.get("app_backend_debug_port", 0))
    if _DIGITS.match(debug_port) and int(debug_port) != 0:
        p.append("app_backend_debug_port is a Compose-only port (127.0.0.1 of one host): set it to 0 with "
                 "app_orchestrator=swarm.")
    return p


_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")


def _postgres_problems(s):
    """app_database and, with postgres, the server's values (s as for app_settings_problems, plus
    _web_concurrency: the backend's workers). The password's value is never part of a message."""
    database = s.get("app_database")
    if database not in ("sqlite", "postgres"):
        return [f"app_database must be sqlite or postgres (got '{str(database)}')."]
    if database != "postgres":
        return []
    p = []
    if not pinned_image(s["app_postgres_image"]):
        p.append(f"app_postgres_image must name an image pinned by tag or digest (name:tag or name@sha256:<64 hex>), "
                 f"not '{str(s['app_postgres_image'])}'.")
    for name in ("app_postgres_user", "app_postgres_db"):
        if not _SQL_NAME.match(str(s[name])) or str(s[name]) == "postgres":
            p.append(f"{name} must be a lower-case SQL name (letters, digits and _, at most 63, not starting "
                     f"with a digit) other than postgres, got '{str(s[name])}'.")
    password = s.get("app_postgres_password")
    if not isinstance(password, str) or len(password) < 16 or re.search("[\r\n]", password):
        p.append("app_postgres_password (the app's PostgreSQL password, needed with app_database=postgres) is "
                 "missing, shorter than 16 characters or holds a line break. Put it in a vault, e.g. "
                 "group_vars/moneytracker/vault.yml: vault_app_postgres_password: "
                 "<python3 -c 'import secrets; print(secrets.token_urlsafe(32))'>.")
    elif (hashlib.sha256(password.encode()).hexdigest() in s["_public_secret_sha256"]
          or re.search("change-?me", password, re.IGNORECASE)):
        p.append("app_postgres_password is a value published in this collection (a placeholder of "
                 "inventories/production/group_vars/moneytracker/vault.yml.example or of its docs). Generate a "
                 "new one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    sizes_ok = True
    for name in ("app_postgres_mem_limit", "app_postgres_shm_size"):
        size = parse_mem(s[name])
        if size is None or size < 6291456:
            sizes_ok = False
            p.append(f"{name} must be a memory size of at least 6m: a whole number with b, k, m or g "
                     f"(e.g. 512m), got '{str(s[name])}'.")
    vcpus = s.get("_vcpus")
    try:
        cpus = float(str(s["app_postgres_cpus"]))
    except ValueError:
        cpus = 0.0
    if not 0 < cpus <= (float(vcpus) if vcpus else cpus):
        p.append(f"app_postgres_cpus must be > 0 and at most the host's {vcpus if vcpus else '?'} CPUs, "
                 f"got {str(s['app_postgres_cpus'])}.")
    counts_ok = True
    for name, minimum, maximum in (("app_postgres_pool_size", 1, 100), ("app_postgres_stop_timeout", 1, 3600),
                                   ("app_postgres_pids_limit", 32, 100000)):
        value = str(s[name])
        if not _DIGITS.match(value) or not minimum <= int(value) <= maximum:
            counts_ok = False
            p.append(f"{name} must be a whole number from {minimum} to {maximum} (got '{value}').")
    workers = str(s.get("_web_concurrency"))
    if sizes_ok and counts_ok and _DIGITS.match(workers):
        pool = int(str(s["app_postgres_pool_size"]))
        # Backends at once: two releases during a Compose rollout; under Swarm the replicas plus the
        # one a start-first update adds.
        swarm = s.get("app_orchestrator") == "swarm" and _DIGITS.match(str(s.get("app_backend_replicas")))
        instances = int(str(s["app_backend_replicas"])) + 1 if swarm else 2
        why = (f"{instances - 1} backend tasks + 1 during a rolling update" if swarm
               else "2 releases during a rollout")
        needed = instances * int(workers) * pool + 10
        sizing = postgres_sizing(s["app_postgres_mem_limit"], needed)
        if not sizing["fits"]:
            p.append(f"app_postgres_mem_limit={str(s['app_postgres_mem_limit'])} is too small for the connections the "
                     f"backend needs: sized from it, PostgreSQL gets shared_buffers {sizing['shared_buffers_mb']} MiB "
                     f"and max_connections {sizing['max_connections']}, and the backend needs {needed} "
                     f"({why} x {workers} workers x app_postgres_pool_size {pool}, + 10 for "
                     f"migrations, backups and monitoring). Set app_postgres_mem_limit to at least "
                     f"{sizing['min_mem_mb']}m, or lower app_postgres_pool_size or app_web_concurrency.")
        elif int(str(s["app_postgres_pids_limit"])) < sizing["max_connections"] + 32:
            p.append(f"app_postgres_pids_limit={str(s['app_postgres_pids_limit'])} is below PostgreSQL's "
                     f"max_connections {sizing['max_connections']} + 32 (one process per connection, plus its own "
                     f"processes): set it to at least {sizing['max_connections'] + 32}.")
    return p


def ports_published_twice(published):
    """{variable: port} -> one message naming each port two variables publish (0 = not published)."""
    by_port = {}
    for name, port in published.items():
        if int(str(port)) > 0:
            by_port.setdefault(int(str(port)), []).append(str(name))
    twice = [f"port {port} is published by both {' and '.join(names)};"
             for port, names in by_port.items() if len(names) > 1]
    if not twice:
        return []
    return [" ".join(twice) + " no port may be used by two services of the host: give one of them another port."]


# ---- docker --------------------------------------------------------------------------------------
def docker_settings_problems(s):
    """The docker role's rules. s: every docker_* variable, plus _facts (distribution, its
    version, os_family)."""
    p = []
    facts = s["_facts"]
    major = int(str(facts.get("distribution_major_version") or 0)) if _DIGITS.match(
        str(facts.get("distribution_major_version") or "0")) else 0
    if facts.get("os_family") != "Debian" or facts.get("distribution") != "Debian" or major < 12:
        p.append(f"The docker role supports Debian 12 and 13; this host runs "
                 f"{facts.get('distribution')} {facts.get('distribution_version')}.")
    elif s["docker_source"] == "distribution" and major < 13:
        p.append(f"docker_source=distribution cannot give Compose v2 on Debian {major} (its docker-compose "
                 f"package is Compose v1). Set docker_source: docker_ce (Docker's apt repository), or "
                 f"upgrade the host to Debian 13.")
    if not _SIZE.match(str(s["docker_log_max_size"])):
        p.append(f"docker_log_max_size must be a number followed by k, m or g (e.g. 10m), "
                 f"got '{str(s['docker_log_max_size'])}'.")
    _integer(p, "docker_log_max_file", s["docker_log_max_file"], 1)
    if not re.match(r"^2\.[0-9]+(\.[0-9]+)?$", str(s["docker_compose_min_version"])):
        p.append(f"docker_compose_min_version must be a Compose v2 version like 2.18.0, got "
                 f"'{str(s['docker_compose_min_version'])}'.")
    clash = [k for k in ("log-driver", "live-restore") if k in s["docker_daemon_options"]]
    if clash:
        p.append(f"docker_daemon_options sets {', '.join(clash)}; use docker_log_driver / docker_live_restore "
                 f"for those instead.")
    if s.get("docker_swarm"):
        managers = s.get("docker_swarm_managers") or []
        if not isinstance(managers, list) or not managers:
            p.append("docker_swarm is true but docker_swarm_managers is empty: name at least one manager "
                     "(deploy.yml takes them from the inventory group moneytracker_managers).")
        if not isinstance(s.get("docker_swarm_node_labels") or {}, dict):
            p.append("docker_swarm_node_labels must be a mapping of label names to values.")
    return p


# ---- moneytracker_db -----------------------------------------------------------------------------
_MAILTO_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_MAILTO = re.compile(rf"^([A-Za-z0-9_][A-Za-z0-9._%+-]*(@{_MAILTO_LABEL}(\.{_MAILTO_LABEL})*)?)?\Z")
_SYSTEM_DIRS = ("/", "/var", "/var/lib", "/etc", "/usr", "/tmp")


def _cron_problem(value, fields):
    parts = str(value).split()
    if len(parts) != 5:
        return f"it has {len(parts)} field(s)."
    return " ".join(f"{f['name']} '{part}' is not {f['allowed']}, *, a range a-b, a list a,b or a step /n."
                    for f, part in zip(fields, parts) if not re.match(f["re"], part, re.IGNORECASE))


def moneytracker_db_settings_problems(s):
    """The moneytracker_db role's rules. s: every moneytracker_db_* variable, plus _cron_fields
    (name, allowed, re of each of the five fields)."""
    p = []
    if s.get("moneytracker_db_engine") not in ("sqlite", "postgres"):
        p.append(f"moneytracker_db_engine must be sqlite or postgres (got '{str(s.get('moneytracker_db_engine'))}').")
    for name in ("moneytracker_db_backup_schedule", "moneytracker_db_prune_schedule",
                 "moneytracker_db_check_quick_schedule", "moneytracker_db_check_full_schedule"):
        problem = _cron_problem(s[name], s["_cron_fields"])
        if problem:
            p.append(f"{name} must be a cron schedule of five fields 'minute hour day-of-month month "
                     f"day-of-week' (e.g. '15 2 * * *'), got '{str(s[name])}': {problem}")

    for name in ("moneytracker_db_backup_dir", "moneytracker_db_state_dir", "moneytracker_db_app_project_dir",
                 "moneytracker_db_textfile_dir", "moneytracker_db_releases_dir", "moneytracker_db_offsite_path"):
        value = str(s[name])
        if value == "":
            continue
        if (not re.match(r"^/[^\s]*$", value) or posixpath.normpath(value) in _SYSTEM_DIRS
                or (posixpath.normpath(value) + "/").startswith("/var/lib/docker/")):
            p.append(f"{name} must be an absolute path without spaces, not a system directory itself and not "
                     f"inside /var/lib/docker (backups must live outside the Docker volume they protect); "
                     f"got '{value}'.")

    backup, state = str(s["moneytracker_db_backup_dir"]), str(s["moneytracker_db_state_dir"])
    offsite, rsync = str(s["moneytracker_db_offsite_path"]), str(s["moneytracker_db_offsite_rsync"])
    if posixpath.normpath(backup) == posixpath.normpath(state):
        p.append(f"moneytracker_db_backup_dir and moneytracker_db_state_dir must differ (both are '{backup}').")
    if offsite and posixpath.normpath(offsite) == posixpath.normpath(backup):
        p.append(f"moneytracker_db_offsite_path must not be the backup directory (both are '{offsite}').")
    if offsite and rsync:
        p.append(f"set at most one of moneytracker_db_offsite_path ('{offsite}') and "
                 f"moneytracker_db_offsite_rsync ('{rsync}').")
    if rsync and (not re.match(r"^[A-Za-z0-9_.@\[\]-]+:[^\s]+$", rsync) or rsync.startswith("-")):
        p.append(f"moneytracker_db_offsite_rsync must look like user@host:/dir (an rsync target over ssh), "
                 f"got '{rsync}'.")

    for name, pattern, rule in (
            ("moneytracker_db_volume", r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "a Docker volume name (letters, digits, _ . -)"),
            ("moneytracker_db_database_name", r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
             "a file name in the volume (letters, digits, _ . -)")):
        if not re.match(pattern, str(s[name])):
            p.append(f"{name} must be {rule} (got '{str(s[name])}').")

    retention = ("moneytracker_db_retention_daily", "moneytracker_db_retention_weekly",
                 "moneytracker_db_retention_monthly")
    numbers_ok = True
    for name, minimum in (*((r, 0) for r in retention), ("moneytracker_db_lock_ttl_seconds", 60),
                          ("moneytracker_db_busy_timeout_ms", 0)):
        before = len(p)
        _integer(p, name, s[name], minimum)
        numbers_ok = numbers_ok and (len(p) == before or name not in retention)
    if numbers_ok and sum(int(str(s[r])) for r in retention) < 1:
        p.append("moneytracker_db_retention_daily, moneytracker_db_retention_weekly and "
                 "moneytracker_db_retention_monthly must together be >= 1: retention would delete every backup "
                 f"(got {', '.join(str(s[r]) for r in retention)}).")

    owner = str(s["moneytracker_db_db_owner"])
    if owner and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*(:0?[0-7]{3})?$", owner):
        p.append(f"moneytracker_db_db_owner must be \"uid:gid\" or \"uid:gid:mode\" (e.g. 10001:10001:0640), or "
                 f"\"\" for the owner of the file being replaced; got '{owner}'.")

    for name in ("moneytracker_db_stop_command", "moneytracker_db_start_command"):
        value = s[name]
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, str) and v != "" for v in value)):
            p.append(f"{name} must be a non-empty list of non-empty strings (an argv, run without a shell), "
                     f"got {_json(value)}.")

    mailto = s["moneytracker_db_cron_mailto"]
    if not isinstance(mailto, str) or not _MAILTO.match(mailto):
        p.append("moneytracker_db_cron_mailto must be one e-mail address (e.g. ops@example.com), a local user "
                 "name, or \"\" for no mail: no spaces, line breaks, commas or leading '-'; "
                 f"got {_json(mailto)}.")
    return p


class FilterModule:
    def filters(self):
        return {
            "unknown_variables": unknown_variables,
            "app_settings_problems": app_settings_problems,
            "docker_settings_problems": docker_settings_problems,
            "moneytracker_db_settings_problems": moneytracker_db_settings_problems,
        }
