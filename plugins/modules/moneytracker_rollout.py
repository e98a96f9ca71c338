#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_rollout
short_description: Bring a Compose stack behind an nginx edge to its compose file without a failed request
version_added: 0.2.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Converges the containers of a Compose project to its compose file one routed service at a time
    with B(start-new, switch, drain, stop) - a new container of the service starts next to the one
    that serves (C(docker compose up --no-deps --no-recreate --scale)), and only once its health
    check passes does the edge send requests to it - the routes file (an nginx include naming the
    container of each route) is rewritten, C(nginx -t) checks it and C(nginx -s reload) switches
    the edge without dropping a connection. The edge's old worker processes finish the requests
    they hold (the drain), then the old container is stopped (its own stop signal and grace
    period, so it finishes what it still has) and removed.
  - A new container that does not become healthy within O(health_timeout) is removed and the
    module fails with its health check's output and the end of its log - the edge never sent it a
    request and the old container kept serving. The caller puts the previous compose file back and
    runs the module again to return to it the same way.
  - A service without a container is started (a first deploy). A service whose container
    publishes a host port cannot have two containers at once - it is recreated in place, and the
    result says so. The edge itself is started when it has no container and recreated only when
    its own image or settings changed (its connections drop then); O(reload=true) reloads it
    (checked with C(nginx -t) first) after its configuration files changed.
  - Containers of a rollout that was interrupted (a second container of a service, a container
    Compose renamed to C(<id>_<name>) while recreating) and containers of services the compose
    file no longer has are removed, each named in the result. The container the edge routes to is
    never one of them.
  - Runs the Docker CLI on the host; needs Docker Compose v2.
options:
  project_dir:
    description: The Compose project's directory.
    type: path
    required: true
  project_name:
    description: The Compose project name.
    type: str
    required: true
  files:
    description: Compose files, relative to O(project_dir).
    type: list
    elements: str
    default: [compose.yaml]
  routes:
    description:
      - The services the edge routes to, in the order they are rolled out, each with the port its
        container listens on. The routes file gets one C(set $mt_route_<service> "<container>:<port>";)
        line per service.
    type: list
    elements: dict
    required: true
    suboptions:
      service:
        description: The service name in the compose file.
        type: str
        required: true
      port:
        description: The port the container listens on.
        type: int
        required: true
  edge:
    description: The edge nginx service.
    type: dict
    required: true
    suboptions:
      service:
        description: Its service name in the compose file.
        type: str
        default: edge
      routes_file:
        description: The routes file on the host (in a directory the edge mounts).
        type: path
        required: true
      config:
        description: The nginx main configuration file as the edge container sees it (C(nginx -c)).
        type: str
        required: true
  reload:
    description: Reload the edge (after C(nginx -t)) even when no route changed - its configuration files did.
    type: bool
    default: false
  recreate_edge:
    description:
      - Recreate the edge even when its image and settings did not change - its mounted directories
        moved to another filesystem, which its mounts cannot follow. Its connections drop then.
    type: bool
    default: false
  health_timeout:
    description: Seconds a new container has to become healthy.
    type: int
    default: 180
  drain_timeout:
    description:
      - Seconds to wait for the edge's old worker processes to finish their requests after a switch.
        The old container is stopped after that in any case (its own grace period still applies).
    type: int
    default: 60
  docker:
    description: The Docker CLI.
    type: path
    default: docker
notes:
  - Check mode says what a run would do, changing nothing.
  - Two backend containers share the SQLite volume for the overlap (seconds); SQLite in WAL mode on
    one host is safe for that. A release with a pending migration does not use this - it takes the
    maintenance page (the app role's migration flow).
seealso:
  - module: moneytracker.deploy.moneytracker_stack_info
'''

EXAMPLES = r'''
- name: Start new containers beside the old ones, switch the edge, drain, stop the old ones
  moneytracker.deploy.moneytracker_rollout:
    project_dir: /opt/moneytracker
    project_name: moneytracker
    routes:
      - {service: backend, port: 8000}
      - {service: frontend, port: 8080}
    edge:
      service: edge
      routes_file: /opt/moneytracker/edge/conf.d/routes.inc
      config: /etc/moneytracker-edge/nginx.conf
    health_timeout: 180
  register: rollout

- name: Reload the edge after its configuration changed (nginx -t first)
  moneytracker.deploy.moneytracker_rollout:
    project_dir: /opt/moneytracker
    project_name: moneytracker
    routes: [{service: backend, port: 8000}, {service: frontend, port: 8080}]
    edge: {routes_file: /opt/moneytracker/edge/conf.d/routes.inc, config: /etc/moneytracker-edge/nginx.conf}
    reload: true
'''

RETURN = r'''
actions:
  description: What was done (or, in check mode, would be), in order, one line each.
  returned: always
  type: list
  elements: str
  sample:
    - "backend: started moneytracker-backend-2 beside moneytracker-backend-1, healthy in 4.1 s"
    - "backend: the edge routes to moneytracker-backend-2 (reload 0.2 s, drained in 0.3 s)"
    - "backend: stopped and removed moneytracker-backend-1 (2.2 s)"
services:
  description: Per routed service, the container that serves now, the one it replaced and how.
  returned: always
  type: dict
  sample: {backend: {container: moneytracker-backend-2, previous: moneytracker-backend-1, action: rolled, seconds: 7.1}}
routes:
  description: The routes the edge has after the run, service name to C(container:port).
  returned: always
  type: dict
edge:
  description: The edge container and what happened to it (C(kept), C(reloaded), C(started), C(recreated)).
  returned: always
  type: dict
removed:
  description: Containers removed as left over (interrupted rollout or recreate, service no longer in the compose file).
  returned: always
  type: list
  elements: str
health_output:
  description: On a new container that did not become healthy, its last health check outputs.
  returned: failure
  type: list
  elements: str
'''

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.moneytracker.deploy.plugins.module_utils.stack import (
    Docker, DockerError, container_facts, parse_routes, render_routes)

# The edge's worker processes, one "<pid> <title>" line each ("nginx: worker process" or
# "nginx: worker process is shutting down"): sh and tr, which every nginx image has.
_WORKERS = ('for p in /proc/[0-9]*; do t=$(tr "\\0" " " < "$p/cmdline" 2>/dev/null) || continue; '
            'case "$t" in "nginx: worker process"*) echo "${p#/proc/} $t";; esac; done')


class RolloutFailed(Exception):
    def __init__(self, msg, **extra):
        Exception.__init__(self, msg)
        self.extra = extra


class Rollout(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.docker = Docker(module, self.p["docker"])
        self.actions = []
        self.removed = []
        self.services = {}
        self.changed = False
        self.edge = {"container": None, "action": "kept"}
        self.compose = self.docker.compose_args(self.p["project_dir"], self.p["project_name"], self.p["files"])
        self.routes_file = self.p["edge"]["routes_file"]
        self.edge_service = self.p["edge"]["service"]
        self.routes = {}
        self.routes_on_disk = {}

    # ---- reading

    def read(self):
        self.config, self.hashes, self.specs = self.docker.compose_model(
            self.p["project_dir"], self.p["project_name"], self.p["files"])
        for r in self.p["routes"] + [{"service": self.edge_service}]:
            if r["service"] not in self.config:
                raise RolloutFailed("the compose file has no service %s" % r["service"])
        self.image_ids = self.docker.image_ids(sorted(set(self.config.values())))
        for ref, iid in sorted(self.image_ids.items()):
            if iid is None:
                raise RolloutFailed("image %s is not on the host (the images role loads it first)" % ref)
        self.containers = self.docker.containers(self.p["project_name"])
        try:
            with open(self.routes_file) as fh:
                self.routes_on_disk = parse_routes(fh.read())
        except (IOError, OSError):
            self.routes_on_disk = {}
        self.routes = dict(self.routes_on_disk)

    def of(self, svc):
        return [c for c in self.containers if c["service"] == svc]

    def current(self, c):
        return c["hash"] == self.hashes.get(c["service"]) and c["image_id"] == self.image_ids.get(
            self.config.get(c["service"]))

    @staticmethod
    def healthy(c):
        return c["state"] == "running" and c["health"] in (None, "healthy")

    def say(self, line, changed=True):
        self.actions.append(line)
        self.changed = self.changed or changed

    # ---- Docker steps

    def remove(self, c, why):
        self.say("%s %s (%s)" % ("would remove" if self.check else "removed", c["name"], why))
        self.removed.append(c["name"])
        if not self.check:
            if c["state"] == "running":
                # Gracefully (its stop signal and grace period): a container of an interrupted
                # rollout may still be finishing requests.
                self.docker.run(["stop", c["id"]])
            self.docker.run(["rm", "--force", c["id"]])
        self.containers = [x for x in self.containers if x["id"] != c["id"]]

    def stop_and_remove(self, c):
        t = time.time()
        if not self.check:
            # docker stop uses the container's own stop signal and grace period (compose's
            # stop_signal / stop_grace_period), so it finishes what it still has.
            self.docker.run(["stop", c["id"]])
            self.docker.run(["rm", c["id"]])
        self.containers = [x for x in self.containers if x["id"] != c["id"]]
        return time.time() - t

    def refresh(self, svc):
        self.containers = [c for c in self.containers if c["service"] != svc] + [
            c for c in self.docker.containers(self.p["project_name"]) if c["service"] == svc]

    def wait_healthy(self, c):
        """Poll one container until healthy; RolloutFailed with its health output otherwise."""
        start = time.time()
        deadline = start + self.p["health_timeout"]
        while True:
            info = self.docker.inspect([c["id"]])
            if not info:
                raise RolloutFailed("%s disappeared while starting" % c["name"])
            now = container_facts(info[0])
            if self.healthy(now) and (now["health"] is not None or time.time() - start >= 1):
                return time.time() - start, now
            why = None
            if now["state"] in ("exited", "dead"):
                why = "exited with code %s" % now["exit_code"]
            elif now["health"] == "unhealthy":
                why = "its health check failed"
            elif time.time() > deadline:
                health = "" if now["health"] is None else ", " + now["health"]
                why = "was not healthy after %d s (%s%s)" % (self.p["health_timeout"], now["state"], health)
            if why:
                rc, out, err = self.docker.call(["logs", "--tail", "20", c["id"]])
                raise RolloutFailed(
                    "%s %s" % (c["name"], why),
                    health_output=[x[-400:] for x in now["health_log"][-3:]],
                    log_tail=[x[-300:] for x in (out + err).strip().splitlines()[-20:]])
            time.sleep(0.25)

    def edge_container(self):
        running = [c for c in self.of(self.edge_service) if c["state"] == "running"]
        return running[0] if running else None

    def edge_exec(self, edge, args):
        return self.docker.call(["exec", edge["id"]] + args)

    def workers(self, edge):
        rc, out, err = self.edge_exec(edge, ["sh", "-c", _WORKERS])
        found = {}
        for line in out.splitlines():
            pid, dummy, title = line.partition(" ")
            found[pid] = "shutting down" in title
        return found

    def write_routes(self):
        text = render_routes(self.routes)
        tmp = self.routes_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.routes_file)

    def reload_edge(self, why):
        """nginx -t, then a graceful reload, confirmed: new workers up, old ones shutting down.
        Returns (seconds to switch, the old worker pids) or raises RolloutFailed."""
        edge = self.edge_container()
        if edge is None:
            return 0.0, []
        conf = self.p["edge"]["config"]
        rc, out, err = self.edge_exec(edge, ["nginx", "-t", "-q", "-e", "stderr", "-c", conf])
        if rc != 0:
            raise RolloutFailed("the edge's configuration does not pass nginx -t (%s): %s" % (why, (err or out).strip()[-800:]))
        before = self.workers(edge)
        old = sorted(pid for pid, going in before.items() if not going)
        t = time.time()
        rc, out, err = self.edge_exec(edge, ["nginx", "-e", "stderr", "-c", conf, "-s", "reload"])
        if rc != 0:
            raise RolloutFailed("nginx -s reload failed on %s: %s" % (edge["name"], (err or out).strip()[-800:]))
        deadline = t + 15
        while True:
            now = self.workers(edge)
            fresh = [pid for pid in now if pid not in before]
            if fresh and all(now.get(pid, True) for pid in old):
                return time.time() - t, old
            if time.time() > deadline:
                raise RolloutFailed("the edge did not take its new configuration within 15 s (%s): no new "
                                    "worker processes; `docker logs %s` says why" % (why, edge["name"]))
            time.sleep(0.05)

    def drain(self, old):
        """Wait until the edge's old workers have finished their requests (they exit then)."""
        edge = self.edge_container()
        if edge is None or not old:
            return 0.0, True
        t = time.time()
        while time.time() - t < self.p["drain_timeout"]:
            now = self.workers(edge)
            if not [pid for pid in old if pid in now]:
                return time.time() - t, True
            time.sleep(0.1)
        return time.time() - t, False

    def switch(self, svc, target, why):
        self.routes[svc] = target
        if self.check:
            return 0.0, 0.0, True
        self.write_routes()
        try:
            took, old = self.reload_edge(why)
        except RolloutFailed:
            self.routes = dict(self.routes_on_disk)
            self.write_routes()
            raise
        self.routes_on_disk = dict(self.routes)
        drained_s, drained = self.drain(old)
        return took, drained_s, drained

    # ---- one routed service

    def converge(self, svc, port):
        t0 = time.time()
        mine = self.of(svc)
        route = self.routes.get(svc, "")
        routed = route.rsplit(":", 1)[0] if route else ""
        live = next((c for c in mine if c["name"] == routed and c["state"] == "running"), None)
        if live is None:
            candidates = sorted((c for c in mine if c["state"] == "running"),
                                key=lambda c: (not self.current(c), not self.healthy(c), c["name"]))
            live = candidates[0] if candidates else None
        others = [c for c in mine if c is not live]
        if live is not None and not self.check and any(c["state"] == "running" for c in others):
            # Killed between writing routes.inc and the edge's reload, the edge may still route
            # to the other container in memory: route to the live one (a reload, checked) and
            # let the edge finish its requests to the other before it is stopped.
            target = "%s:%d" % (live["name"], port)
            took, drained_s, drained = self.switch(
                svc, target, "route %s to %s before removing what an interrupted rollout left" % (svc, live["name"]))
            self.say("%s: the edge routes to %s (reloaded in %.1f s, %s)" % (
                svc, live["name"], took, ("drained in %.1f s" % drained_s) if drained
                else "old edge workers still busy after %d s" % self.p["drain_timeout"]))
            route = target
        for c in others:
            self.remove(c, "a second %s container, left by an interrupted rollout" % svc
                        if c["state"] == "running" else "a stopped %s container" % svc)
        entry = {"container": live["name"] if live else None, "previous": None, "action": "kept"}
        self.services[svc] = entry
        if live is not None and self.current(live) and self.healthy(live):
            target = "%s:%d" % (live["name"], port)
            if self.routes.get(svc) != target:
                took, drained_s, dummy = self.switch(svc, target, "route %s to %s" % (svc, live["name"]))
                self.say("%s: the edge routes to %s (it routed to %s)" % (svc, live["name"], route or "nothing"))
                entry["action"] = "routed"
            return
        if live is not None and self.specs.get(svc, {}).get("ports"):
            # A host port cannot be published twice: this service is recreated in place.
            self.say("%s: recreating %s in place (it publishes a host port: no two containers at once)"
                     % (svc, live["name"]))
            if not self.check:
                self.docker.run(self.compose + ["up", "--detach", "--no-deps", "--wait", "--wait-timeout",
                                                str(self.p["health_timeout"]), svc], cwd=self.p["project_dir"])
                self.refresh(svc)
            entry.update(action="recreated", previous=live["name"])
            return
        before = set(c["id"] for c in self.of(svc))
        scale = len(before) + 1
        beside = (" beside %s" % live["name"]) if live else ""
        if self.check:
            self.say("%s: would start a new container%s, wait until healthy, route the edge to it%s"
                     % (svc, beside, (", drain and stop %s" % live["name"]) if live else ""))
            entry.update(action="would roll" if live else "would start", previous=live and live["name"])
            return
        self.docker.run(self.compose + ["up", "--detach", "--no-deps", "--no-recreate", "--scale",
                                        "%s=%d" % (svc, scale), svc], cwd=self.p["project_dir"])
        self.refresh(svc)
        new = [c for c in self.of(svc) if c["id"] not in before]
        if len(new) != 1:
            raise RolloutFailed("docker compose up --scale %s=%d started %d new containers, not 1" % (svc, scale, len(new)))
        new = new[0]
        try:
            healthy_s, dummy = self.wait_healthy(new)
        except RolloutFailed as e:
            self.docker.call(["rm", "--force", new["id"]])
            self.say("%s: removed %s, which did not become healthy; %s" % (
                svc, new["name"], ("%s keeps serving" % live["name"]) if live else "nothing serves " + svc))
            said = [x for x in e.extra.get("health_output") or [] if x]
            raise RolloutFailed("%s: the new container %s; its health check said: %s. It was removed%s." % (
                svc, e, said[-1] if said else "(nothing)",
                (" and %s keeps serving" % live["name"]) if live else ""), **e.extra)
        self.say("%s: started %s%s, healthy in %.1f s" % (svc, new["name"], beside, healthy_s))
        took, drained_s, drained = self.switch(svc, "%s:%d" % (new["name"], port),
                                               "route %s to %s" % (svc, new["name"]))
        if self.edge_container() is None:
            self.say("%s: routed to %s (the edge is started after the services)" % (svc, new["name"]))
        else:
            self.say("%s: the edge routes to %s (reload %.1f s, %s)" % (
                svc, new["name"], took, ("drained in %.1f s" % drained_s) if drained
                else "old edge workers still busy after %d s" % self.p["drain_timeout"]))
        entry.update(container=new["name"], previous=live["name"] if live else None,
                     action="rolled" if live else "started")
        if live is not None:
            stopped_s = self.stop_and_remove(live)
            self.say("%s: stopped and removed %s (%.1f s)" % (svc, live["name"], stopped_s))
        entry["seconds"] = round(time.time() - t0, 1)

    # ---- the edge

    def converge_edge(self):
        svc = self.edge_service
        mine = self.of(svc)
        live = next((c for c in mine if c["state"] == "running"), None)
        for c in mine:
            if c is not live:
                self.remove(c, "a second or stopped edge container")
        self.edge["container"] = live["name"] if live else None
        if live is not None and self.current(live) and not self.p["recreate_edge"]:
            if not self.healthy(live) and live["health"] != "starting":
                self.say("edge: restarting %s (%s)" % (live["name"], live["health"]))
                if not self.check:
                    self.docker.run(["restart", live["id"]])
                    self.wait_healthy(live)
                self.edge["action"] = "restarted"
            return
        if live is None:
            what = "starting the edge"
        elif self.current(live):
            what = "recreating %s (its directories moved to another filesystem: its connections drop)" % live["name"]
        else:
            what = "recreating %s (its image or settings changed: its connections drop)" % live["name"]
        self.say("edge: " + what)
        self.edge["action"] = "recreated" if live else "started"
        if self.check:
            return
        t = time.time()
        self.docker.run(self.compose + ["up", "--detach", "--no-deps"]
                        + (["--force-recreate"] if live is not None and self.p["recreate_edge"] else []) + [svc],
                        cwd=self.p["project_dir"])
        self.refresh(svc)
        edge = self.edge_container()
        if edge is None:
            raise RolloutFailed("the edge container did not start")
        self.wait_healthy(edge)
        self.edge["container"] = edge["name"]
        self.say("edge: %s is healthy (%.1f s)" % (edge["name"], time.time() - t))

    def run(self):
        self.read()
        leftover = re.compile(r"^[0-9a-f]{12}_" + re.escape(self.p["project_name"]) + "-")
        for c in list(self.containers):
            if leftover.match(c["name"]):
                self.remove(c, "left by an interrupted recreate")
            elif c["service"] not in self.config:
                self.remove(c, "service %s is not in the compose file" % c["service"])
        for r in self.p["routes"]:
            self.converge(r["service"], r["port"])
        self.converge_edge()
        # A route file the edge does not have yet (a first deploy, a file put back by hand).
        for r in self.p["routes"]:
            name = self.services[r["service"]]["container"]
            if name and self.routes.get(r["service"]) != "%s:%d" % (name, r["port"]):
                self.routes[r["service"]] = "%s:%d" % (name, r["port"])
        # (An edge started or recreated in this run read the files as they are.)
        fresh_edge = self.edge["action"] in ("started", "recreated")
        if self.routes != self.routes_on_disk or (self.p["reload"] and not fresh_edge):
            why = "routes changed" if self.routes != self.routes_on_disk else "its configuration changed"
            if self.check:
                self.say("edge: would reload (%s)" % why)
            else:
                if self.routes != self.routes_on_disk:
                    self.write_routes()
                took, old = self.reload_edge(why)
                self.routes_on_disk = dict(self.routes)
                if self.edge["action"] == "kept":
                    self.edge["action"] = "reloaded"
                self.say("edge: reloaded (%s) in %.1f s" % (why, took))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            project_name=dict(type="str", required=True),
            files=dict(type="list", elements="str", default=["compose.yaml"]),
            routes=dict(type="list", elements="dict", required=True, options=dict(
                service=dict(type="str", required=True),
                port=dict(type="int", required=True),
            )),
            edge=dict(type="dict", required=True, options=dict(
                service=dict(type="str", default="edge"),
                routes_file=dict(type="path", required=True),
                config=dict(type="str", required=True),
            )),
            reload=dict(type="bool", default=False),
            recreate_edge=dict(type="bool", default=False),
            health_timeout=dict(type="int", default=180),
            drain_timeout=dict(type="int", default=60),
            docker=dict(type="path", default="docker"),
        ),
        supports_check_mode=True,
    )
    r = Rollout(module)
    try:
        r.run()
    except (RolloutFailed, DockerError) as e:
        extra = getattr(e, "extra", {})
        module.fail_json(msg=to_text(e), changed=r.changed, actions=r.actions, services=r.services,
                         routes=r.routes_on_disk, edge=r.edge, removed=r.removed, **extra)
    module.exit_json(changed=r.changed, actions=r.actions, services=r.services, routes=r.routes,
                     edge=r.edge, removed=r.removed)


if __name__ == "__main__":
    main()
