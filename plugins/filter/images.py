# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters for image delivery.

image_archive_name  "moneytracker/backend:2.0.0" -> "moneytracker-backend-2.0.0.tar", the name
                    under which examples/moneytracker/build.sh --save writes `docker save` tarballs.
archive_image_id    the image ID recorded in a `docker save` tarball's manifest.json (both the
                    classic "<hex>.json" and the OCI "blobs/sha256/<hex>" layouts).
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError


def image_archive_name(ref):
    ref = str(ref).strip()
    if not ref or re.search(r"\s", ref):
        raise AnsibleFilterError(f"image_archive_name: '{ref}' is not an image reference")
    return re.sub(r"[/:@]", "-", ref) + ".tar"


def archive_image_id(manifest):
    try:
        data = json.loads(manifest) if isinstance(manifest, str) else manifest
        config = data[0]["Config"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AnsibleFilterError(f"archive_image_id: not a docker save manifest.json ({exc})")
    match = re.search(r"([0-9a-f]{64})(\.json)?$", config)
    if not match:
        raise AnsibleFilterError(f"archive_image_id: no image ID in the manifest's Config '{config}'")
    return "sha256:" + match.group(1)


class FilterModule:
    def filters(self):
        return {"image_archive_name": image_archive_name, "archive_image_id": archive_image_id}
