#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_stack_info
short_description: What a deploy needs to know about the MoneyTracker stack on the host, in one call
version_added: 0.2.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Reads, read-only, in one module run what the C(app) role otherwise asked of the host in a dozen
    tasks (stat, find, docker ps, docker image inspect, docker compose) - the owner, mode and
    content checksum of files and directories, the entries of directories, whether files hold the
    content a play wants (without that content ever appearing in a result), the stack's
    containers and whether they run the configuration of the active compose file.
  - O(project_dir) with an active compose file gives C(services), C(leftovers), C(orphans) and
    C(in_sync). C(in_sync) is true only when every service of the compose file has a running
    container whose compose configuration hash (the C(com.docker.compose.config-hash) label,
    compared with C(docker compose config --hash)) and image ID are those the compose file gives
    now, its health check (if any) reports healthy, and no container of the project is left over
    from an interrupted recreate or belongs to no service; then C(docker compose up) would change
    nothing and its wait would return at once.
  - Never changes anything (C(changed=false)), and runs in check mode.
options:
  project_dir:
    description:
      - The compose project directory. With O(project_name), the stack's containers are read.
    type: path
  project_name:
    description:
      - The compose project name (the C(com.docker.compose.project) label).
    type: str
  files:
    description:
      - The active compose file(s), relative to O(project_dir).
    type: list
    elements: str
    default: [compose.yaml]
  stat:
    description:
      - Paths to report in C(stat) (missing ones as C(null)); a symbolic link is followed, and its
        target is reported as C(link).
    type: list
    elements: path
    default: []
  checksum:
    description:
      - Paths of O(stat) whose SHA-1 is reported (regular files only). Never list a secret here;
        use O(same_content).
    type: list
    elements: path
    default: []
  same_content:
    description:
      - Path to the content a play wants there; C(same_content) says per path whether the file holds
        exactly that. The wanted content (a secret, typically) is never returned or logged (the
        option is C(no_log)); only the booleans are.
    type: dict
    default: {}
  list_dirs:
    description:
      - Directories whose entries are reported in C(dirs), sorted by name (a missing one as C(null)).
    type: list
    elements: path
    default: []
  newest_entry:
    description:
      - Directory to a file name; C(newest_entry) reports per directory its last entry in sort order
        (release directories named by UTC time sort oldest first) and the SHA-1 of that file in it.
    type: dict
    default: {}
  newest_json:
    description:
      - Directory to a file name; C(newest_json) reports per directory the parsed content of that JSON
        file in its last entry in sort order (the newest release's record, typically).
    type: dict
    default: {}
  containing:
    description:
      - Report in C(containing) the files under O(containing.root) (at most O(containing.depth) levels
        down) whose name matches one of O(containing.patterns) and whose content matches O(containing.regex).
    type: dict
    suboptions:
      root:
        description: Where to look.
        type: path
        required: true
      patterns:
        description: Shell patterns for the file names.
        type: list
        elements: str
        required: true
      regex:
        description: A Python regular expression searched in each file (multi-line).
        type: str
        required: true
      depth:
        description: How many directory levels below O(containing.root) to look.
        type: int
        default: 3
  images:
    description:
      - Image references (or IDs) to inspect; those present are returned in C(images).
    type: list
    elements: str
    default: []
  routes:
    description:
      - The edge's routes file (written by M(moneytracker.deploy.moneytracker_rollout)) and the
        services it routes. C(in_sync) is then also false when a routed service has more than one
        container (an interrupted rollout) or the edge routes it to another container than its one.
    type: dict
    suboptions:
      file:
        description: The routes file on the host.
        type: path
        required: true
      services:
        description: The routed services.
        type: list
        elements: str
        required: true
  volumes:
    description:
      - Docker volumes to look for, each with a file inside it whose size to report (V("") for none).
        C(volumes) in the result tells, per volume, whether it exists and the file's size (C(null)
        when there is no such file). The app role reads its data volume's SQLite file and its PostgreSQL
        volume with it, to refuse a deploy that would start an empty database beside the other engine's data.
    type: dict
    default: {}
    version_added: 0.3.0
  migration_status:
    description:
      - The host tool (C(moneytracker-db)) whose C(migration status) to report in C(migration_status)
        (what M(moneytracker.deploy.moneytracker_db_migration) with O(moneytracker.deploy.moneytracker_db_migration#module:action=status)
        returns), read in the same run as the rest. Nothing is read when the tool is missing.
    type: path
  docker:
    description: The Docker CLI.
    type: path
    default: docker
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: No diff.
notes:
  - Needs the Docker CLI with the Compose v2 plugin on the host when O(project_dir) and O(project_name)
    are given and the compose file exists; Python 3 there, nothing else.
seealso:
  - name: The no-op deploy
    description: How the app role uses it to skip what is already in place (docs/benchmarks.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/benchmarks.md
  - module: community.docker.docker_compose_v2
'''

EXAMPLES = r'''
- name: Read the stack's state on the host
  moneytracker.deploy.moneytracker_stack_info:
    project_dir: /opt/moneytracker
    project_name: moneytracker
    stat: [/opt/moneytracker/compose.yaml, /opt/moneytracker/secrets/secret_key]
    checksum: [/opt/moneytracker/compose.yaml]
    same_content:
      /opt/moneytracker/secrets/secret_key: "{{ app_secret_key }}"
    list_dirs: [/opt/moneytracker/releases]
  register: stack

- name: Start the stack only when it does not run this configuration already
  community.docker.docker_compose_v2:
    project_src: /opt/moneytracker
    state: present
    wait: true
  when: not stack.in_sync
'''

RETURN = r'''
stat:
  description: Per path of O(stat), C(null) when missing, else C(dir), C(mode) (octal string), C(uid),
    C(gid), C(mtime) and, for the paths of O(checksum) that are regular files, C(sha1).
  returned: always
  type: dict
  sample: {/opt/moneytracker/compose.yaml: {dir: false, mode: "0640", uid: 0, gid: 0, mtime: 1796066731.2, sha1: 0a1b...}}
same_content:
  description: Per path of O(same_content), whether the file holds exactly the wanted content.
  returned: always
  type: dict
  sample: {/opt/moneytracker/secrets/secret_key: true}
dirs:
  description: Per directory of O(list_dirs), its entries sorted by name (C(name), C(path), C(dir),
    C(mtime)), or C(null) when it does not exist.
  returned: always
  type: dict
images:
  description: The C(docker image inspect) data of those of O(images) that are present (the format of
    M(community.docker.docker_image_info)'s C(images)).
  returned: always
  type: list
  elements: dict
newest_entry:
  description: Per directory of O(newest_entry), C(null) when it is missing or empty, else C(name) (its
    last entry) and C(sha1) (of the named file in it, C(null) when that file is missing).
  returned: always
  type: dict
  sample: {/opt/moneytracker/releases: {name: 20261130T233038Z, sha1: c51ffa1b9eddfb221200b3bba89aab49e5469a99}}
newest_json:
  description: Per directory of O(newest_json), the parsed file, or C(null) when the directory is missing
    or empty or the file is missing or not JSON.
  returned: always
  type: dict
containing:
  description: The files that O(containing) found, sorted.
  returned: always
  type: list
  elements: str
compose_file:
  description: Whether the active compose file exists.
  returned: always
  type: bool
services:
  description:
    - Per service of the active compose file, C(image) (its reference), C(want_hash) (its
      configuration hash now), C(want_image_id) (the ID that reference gives now, C(null) if absent)
      and C(containers), each with C(name), C(state), C(health) (C(null) without a health check),
      C(hash) and C(image_id) (the image it was created from).
  returned: when the compose file exists
  type: dict
containers:
  description: The names of every container of the project (any state); empty without a compose file.
  returned: when O(project_dir) is given
  type: list
  elements: str
leftovers:
  description: Containers an interrupted recreate left behind (C(<12 hex>_<project>-...)).
  returned: when O(project_dir) is given
  type: list
  elements: str
orphans:
  description: Containers of the project whose service is not in the compose file.
  returned: when the compose file exists
  type: list
  elements: str
unhealthy:
  description: Services whose container runs the current configuration but is unhealthy or not running
    (a restart, not a recreate, is what they need); not one whose health check is still starting.
  returned: always
  type: list
  elements: str
routes:
  description: The edge's routes (service name to C(container:port)), when O(routes) is given and the compose file exists.
  returned: when O(routes) is given
  type: dict
working_dirs:
  description:
    - The project directories (Compose's C(com.docker.compose.project.working_dir) label) of the
      project's containers; another one than O(project_dir) means the project directory changed.
  returned: when O(project_dir) is given
  type: list
  elements: str
in_sync:
  description: Whether the stack runs exactly the active compose file, every service up and healthy
    (see the description); C(false) without a compose file.
  returned: always
  type: bool
volumes:
  description:
    - With O(volumes), per volume C(exists) and C(file_size) (the size of the file named for it, C(null)
      when the volume or the file does not exist). Empty without a Docker engine.
  returned: always
  type: dict
  sample: {"moneytracker_data": {"exists": true, "file_size": 1048576}, "moneytracker_postgres": {"exists": false, "file_size": null}}
migration_status:
  description:
    - With O(migration_status), the tool's C(migration status) (C(unfinished), C(live_schema), C(lock), C(msg),
      ...) as M(moneytracker.deploy.moneytracker_db_migration) returns it; C(null) when the tool is missing
      or its status failed (the caller asks the module then, which names the cause).
  returned: when O(migration_status) is given
  type: dict
out_of_sync:
  description: Why C(in_sync) is false, one line per reason.
  returned: always
  type: list
  elements: str
'''

import fnmatch
import json
import os
import re
import stat as stat_mod

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.moneytracker.deploy.plugins.module_utils.host import path_info
from ansible_collections.moneytracker.deploy.plugins.module_utils.moneytracker_db import MoneytrackerDbClient
from ansible_collections.moneytracker.deploy.plugins.module_utils.stack import Docker, DockerError, compare, parse_routes


def _same_content(path, wanted):
    try:
        with open(path, "rb") as fh:
            return fh.read() == to_bytes(wanted, errors="surrogate_or_strict")
    except OSError:
        return False


def _names(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return None


def _list_dir(path):
    names = _names(path)
    if names is None:
        return None
    out = []
    for name in names:
        full = os.path.join(path, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        out.append({"name": name, "path": full, "dir": stat_mod.S_ISDIR(st.st_mode), "mtime": st.st_mtime})
    return out


def _newest_entry(path, name):
    entries = _names(path)
    if not entries:
        return None
    found = path_info(os.path.join(path, entries[-1], name), True)
    return {"name": entries[-1], "sha1": (found or {}).get("sha1")}


def _newest_json(path, name):
    entries = _names(path)
    if not entries:
        return None
    try:
        with open(os.path.join(path, entries[-1], name), "r") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _containing(spec):
    root = spec["root"]
    regex = re.compile(spec["regex"], re.MULTILINE)
    found = []
    base_depth = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath.rstrip(os.sep).count(os.sep) - base_depth >= spec["depth"]:
            dirnames[:] = []
        for name in filenames:
            if not any(fnmatch.fnmatch(name, p) for p in spec["patterns"]):
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path, "r", errors="replace") as fh:
                    if regex.search(fh.read()):
                        found.append(path)
            except OSError:
                continue
    return sorted(found)


def _routes(path):
    try:
        with open(path) as fh:
            return parse_routes(fh.read())
    except (IOError, OSError):
        return {}


def _volumes(docker, wanted):
    """{volume: {exists, file_size}} for {volume: file inside it ("" for none)}, in one inspect."""
    found = {}
    if wanted:
        dummy, stdout, dummy2 = docker.call(["volume", "inspect"] + sorted(wanted))  # exit 1 when one is missing
        try:
            found = dict((v["Name"], v.get("Mountpoint")) for v in json.loads(stdout or "[]"))
        except ValueError:
            found = {}
    result = {}
    for name, inside in wanted.items():
        mount = found.get(name)
        size = None
        if mount and inside:
            try:
                size = os.stat(os.path.join(mount, inside)).st_size
            except OSError:
                size = None
        result[name] = {"exists": name in found, "file_size": size}
    return result


def _migration_status(module, tool):
    """The tool's `migration status` as moneytracker_db_migration returns it, or None."""
    if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
        return None
    found = MoneytrackerDbClient(module, tool=tool, config="").run("migration", "status")
    if not found.ok:
        return None
    status = found.details()
    status.update(failed=False, changed=False, rc=found.rc, cmd=found.cmd, msg=found.message)
    return status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path"),
            project_name=dict(type="str"),
            files=dict(type="list", elements="str", default=["compose.yaml"]),
            stat=dict(type="list", elements="path", default=[]),
            checksum=dict(type="list", elements="path", default=[]),
            same_content=dict(type="dict", default={}, no_log=True),
            list_dirs=dict(type="list", elements="path", default=[]),
            newest_entry=dict(type="dict", default={}),
            newest_json=dict(type="dict", default={}),
            containing=dict(type="dict", options=dict(
                root=dict(type="path", required=True),
                patterns=dict(type="list", elements="str", required=True),
                regex=dict(type="str", required=True),
                depth=dict(type="int", default=3),
            )),
            images=dict(type="list", elements="str", default=[]),
            routes=dict(type="dict", options=dict(
                file=dict(type="path", required=True),
                services=dict(type="list", elements="str", required=True),
            )),
            volumes=dict(type="dict", default={}),
            migration_status=dict(type="path"),
            docker=dict(type="path", default="docker"),
        ),
        required_together=[("project_dir", "project_name")],
        supports_check_mode=True,
    )
    p = module.params
    checksum = set(p["checksum"])
    result = dict(
        changed=False,
        stat=dict((path, path_info(path, path in checksum)) for path in p["stat"]),
        same_content=dict((path, _same_content(path, wanted)) for path, wanted in p["same_content"].items()),
        dirs=dict((path, _list_dir(path)) for path in p["list_dirs"]),
        newest_entry=dict((path, _newest_entry(path, name)) for path, name in p["newest_entry"].items()),
        newest_json=dict((path, _newest_json(path, name)) for path, name in p["newest_json"].items()),
        containing=_containing(p["containing"]) if p["containing"] else [],
        compose_file=False,
        unhealthy=[],
        in_sync=False,
        out_of_sync=[],
    )
    if p["migration_status"]:
        result["migration_status"] = _migration_status(module, p["migration_status"])
    docker = Docker(module, p["docker"])
    try:
        # No engine yet (check mode on a new host): no image is there.
        engine = bool(module.get_bin_path(p["docker"]))
        result["images"] = docker.inspect_images(p["images"]) if engine else []
        result["volumes"] = _volumes(docker, p["volumes"]) if engine else {}
        if p["project_dir"]:
            files = [os.path.join(p["project_dir"], f) for f in p["files"]]
            result["compose_file"] = all(os.path.isfile(f) for f in files)
            # Without a compose file here there may still be the project's containers of another
            # project directory (app_project_dir changed); without an engine there is nothing to ask.
            containers = []
            if result["compose_file"] or module.get_bin_path(p["docker"]):
                try:
                    containers = docker.containers(p["project_name"])
                except DockerError:
                    if result["compose_file"]:
                        raise
            result["containers"] = sorted(c["name"] for c in containers)
            result["working_dirs"] = sorted(set(c["working_dir"] for c in containers if c.get("working_dir")))
            if result["compose_file"]:
                config, hashes, dummy = docker.compose_model(p["project_dir"], p["project_name"], p["files"])
                routes = None
                if p["routes"]:
                    result["routes"] = _routes(p["routes"]["file"])
                    routes = dict((svc, result["routes"].get(svc, "")) for svc in p["routes"]["services"])
                found = compare(config, hashes, containers, docker.image_ids(sorted(set(config.values()))),
                                p["project_name"], routes)
                result.update(found)
            else:
                result["leftovers"] = []
                result["out_of_sync"] = ["no compose file at %s" % ", ".join(files)]
    except DockerError as e:
        module.fail_json(msg=to_text(e), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
