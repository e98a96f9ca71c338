# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Lookup: the manifest.json of `docker save` tarballs on the controller, read in-process (no
module run per archive)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: archive_manifest
author: MoneyTracker operators (@moneytracker)
short_description: The manifest.json of docker save archives on the controller
description:
  - Returns, for each term (the path of an uncompressed C(docker save) tarball on the controller),
    the text of its C(manifest.json), in the order of the terms.
  - Reads only the tar headers up to that member and the member itself; fails naming the archive
    when it is missing, not a tar file, or has no C(manifest.json).
options:
  _terms:
    description: Paths of the archives.
    required: true
"""

EXAMPLES = r"""
- name: The image ID in each archive
  ansible.builtin.debug:
    msg: "{{ query('moneytracker.deploy.archive_manifest', '/srv/images/moneytracker-backend-2.0.0.tar')
             | map('moneytracker.deploy.archive_image_id') }}"
"""

RETURN = r"""
_raw:
  description: The text of each archive's manifest.json.
  type: list
  elements: str
"""

import tarfile

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def read_manifest(path: str) -> str:
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if member.name.lstrip("./") == "manifest.json" and member.isfile():
                    fh = tar.extractfile(member)
                    return fh.read().decode("utf-8") if fh else ""
    except (OSError, tarfile.TarError) as exc:
        raise AnsibleLookupError(f"cannot read the image archive {path}: {exc}") from exc
    raise AnsibleLookupError(f"{path} has no manifest.json: not a docker save archive")


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [read_manifest(str(term)) for term in terms]
