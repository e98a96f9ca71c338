# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0
"""What the app role's modules know of a Compose stack on the host, written once.

moneytracker_stack_info (the read of a deploy) and moneytracker_rollout (start-new, switch, drain,
stop) share: the Docker CLI client (``Docker``: argv lists through ``module.run_command``, never a
shell), the decision whether a container runs what the compose file gives (``compare``, pure) and
the edge's routes file (``render_routes`` / ``parse_routes``, pure): the container each route of
the edge nginx goes to.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re

from ansible.module_utils.common.text.converters import to_text


def compare(config, hashes, containers, image_ids, project, routes=None):
    """Decide from what Docker reported whether `up` would change anything (pure, unit-tested).

    config: {service: image ref} of the compose file; hashes: {service: config hash};
    containers: [{name, service, state, health, hash, image_id}]; image_ids: {ref: id or None};
    routes: None, or {service: "container:port" or ""} of the edge for the routed services - each
    must name the one container of its service."""
    services = {}
    reasons = []
    unhealthy = []
    leftover_re = re.compile(r"^[0-9a-f]{12}_" + re.escape(project) + "-")
    leftovers = sorted(c["name"] for c in containers if leftover_re.match(c["name"]))
    orphans = sorted(c["name"] for c in containers
                     if c["service"] not in config and c["name"] not in leftovers)
    for name in leftovers:
        reasons.append("container %s was left by an interrupted recreate" % name)
    for name in orphans:
        reasons.append("container %s belongs to no service of the compose file" % name)
    for svc in sorted(config):
        ref = config[svc]
        mine = [c for c in containers if c["service"] == svc and c["name"] not in leftovers]
        services[svc] = {"image": ref, "want_hash": hashes.get(svc), "want_image_id": image_ids.get(ref),
                         "containers": mine}
        if not mine:
            reasons.append("service %s has no container" % svc)
            continue
        current = True
        for c in mine:
            if c["hash"] != hashes.get(svc):
                reasons.append("%s runs another configuration of %s" % (c["name"], svc))
                current = False
            if image_ids.get(ref) is None or c["image_id"] != image_ids.get(ref):
                reasons.append("%s runs another image than %s" % (c["name"], ref))
                current = False
        for c in mine:
            if c["state"] != "running" or c["health"] not in (None, "healthy"):
                reasons.append("%s is %s%s" % (c["name"], c["state"],
                                               "" if c["health"] is None else " (" + c["health"] + ")"))
                # Still starting: `up --wait` waits for it; stopped or unhealthy: it needs a restart.
                if current and c["health"] != "starting" and svc not in unhealthy:
                    unhealthy.append(svc)
    for svc, route in sorted((routes or {}).items()):
        mine = [c["name"] for c in services.get(svc, {}).get("containers", [])]
        if len(mine) > 1:
            reasons.append("service %s has %d containers (%s): a rollout did not finish"
                           % (svc, len(mine), ", ".join(sorted(mine))))
        elif mine and (route or "").rsplit(":", 1)[0] != mine[0]:
            reasons.append("the edge routes %s to %s, not to %s" % (svc, route or "nothing", mine[0]))
    return {"services": services, "leftovers": leftovers, "orphans": orphans, "unhealthy": unhealthy,
            "in_sync": not reasons, "out_of_sync": reasons}


# The routes file is an nginx include of the edge's server block: one variable per routed service,
# resolved per request through Docker's DNS (the edge's `resolver 127.0.0.11`).
_ROUTE_LINE = re.compile(r'^\s*set\s+\$mt_route_([a-z][a-z0-9_]*)\s+"([^"\s]+)";\s*$')


def render_routes(routes):
    """{service: "container:port"} -> the routes file's text (sorted, so a rewrite is stable)."""
    lines = ["# Written by moneytracker.deploy.moneytracker_rollout: the container each route of the edge",
             "# goes to. Included by the edge's server block; change it only through a deploy."]
    for svc in sorted(routes):
        if not re.match(r"^[a-z][a-z0-9_]*$", svc) or not re.match(r"^[A-Za-z0-9_.-]+:[0-9]+$", routes[svc]):
            raise ValueError("not a route: %r -> %r" % (svc, routes[svc]))
        lines.append('set $mt_route_%s "%s";' % (svc, routes[svc]))
    return "\n".join(lines) + "\n"


def parse_routes(text):
    """The routes file's text -> {service: "container:port"}; lines that are not routes are ignored."""
    out = {}
    for line in (text or "").splitlines():
        m = _ROUTE_LINE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


class DockerError(Exception):
    pass


class Docker(object):
    """The Docker CLI on the host. ``run`` raises DockerError with the command's stderr on failure."""

    def __init__(self, module, docker="docker"):
        self.module = module
        self.docker = docker

    def call(self, args, cwd=None):
        rc, out, err = self.module.run_command([self.docker] + list(args), cwd=cwd)
        return rc, to_text(out), to_text(err)

    def run(self, args, cwd=None):
        rc, out, err = self.call(args, cwd=cwd)
        if rc != 0:
            raise DockerError("%s %s failed (rc %s): %s" % (self.docker, " ".join(args), rc,
                                                            (err or out).strip()[-800:]))
        return out

    def inspect(self, ids):
        return json.loads(self.run(["container", "inspect"] + list(ids))) if ids else []

    def containers(self, project):
        """The project's service containers, running or not; not the one-off containers of
        `docker compose run` (the schema check, an operator's command), which are no service's."""
        ids = self.run(["ps", "--all", "--quiet", "--no-trunc", "--filter",
                        "label=com.docker.compose.project=%s" % project, "--filter",
                        "label=com.docker.compose.oneoff=False"]).split()
        return [container_facts(c) for c in self.inspect(ids)]

    def inspect_images(self, refs):
        if not refs:
            return []
        # Exit 1 when one is missing; the others' data is still printed.
        dummy, stdout, dummy2 = self.call(["image", "inspect"] + list(refs))
        try:
            return json.loads(stdout or "[]")
        except ValueError:
            return []

    def image_ids(self, refs):
        out = {}
        for ref in refs:
            rc, stdout, dummy = self.call(["image", "inspect", "--format", "{{.Id}}", ref])
            out[ref] = stdout.strip() if rc == 0 else None
        return out

    def compose_args(self, project_dir, project_name, files):
        args = ["compose", "--project-name", project_name, "--project-directory", project_dir]
        for f in files:
            args += ["--file", os.path.join(project_dir, f)]
        return args

    def compose_model(self, project_dir, project_name, files):
        """(config {service: image}, hashes {service: config hash}, services {service: spec})."""
        args = self.compose_args(project_dir, project_name, files)
        hashes = {}
        for line in self.run(args + ["config", "--hash", "*"], cwd=project_dir).splitlines():
            if line.strip():
                svc, value = line.split(None, 1)
                hashes[svc] = value.strip()
        model = json.loads(self.run(args + ["config", "--format", "json"], cwd=project_dir))
        services = model.get("services") or {}
        return dict((svc, spec.get("image")) for svc, spec in services.items()), hashes, services


def container_facts(c):
    """What the modules use of one `docker container inspect` entry."""
    labels = (c.get("Config") or {}).get("Labels") or {}
    state = c.get("State") or {}
    health = state.get("Health")
    return {
        "id": c.get("Id"),
        "name": c.get("Name", "").lstrip("/"),
        "service": labels.get("com.docker.compose.service"),
        "working_dir": labels.get("com.docker.compose.project.working_dir"),
        "state": state.get("Status"),
        "health": health.get("Status") if health else None,
        "health_log": [to_text(e.get("Output", "")).strip() for e in (health or {}).get("Log") or []],
        "exit_code": state.get("ExitCode"),
        "hash": labels.get("com.docker.compose.config-hash"),
        "image_id": c.get("Image"),
    }
