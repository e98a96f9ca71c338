# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters for image delivery (the internal role moneytracker.deploy.images).

image_archive_name  "moneytracker/backend:2.0.0" -> "moneytracker-backend-2.0.0.tar": '/', ':' and
                    '@' become '-' (so "name@sha256:<hex>" -> "name-sha256-<hex>.tar"). The same rule
                    as archive_name() in scripts/lib/image-build.sh, which writes the tarballs
                    (tests/unit/plugins/filter/test_image_filters.py checks that both agree).
image_digest_tag    "name@sha256:<hex>" -> "name:sha256-<hex>", the tag under which a digest pin
                    travels in an archive and is kept on a host whose engine cannot hold the
                    digest reference itself (a `docker load` restores tags, never repo digests);
                    a tag pin is returned unchanged. Same rule as digest_tag() in image-build.sh.
archive_image_id    the image ID recorded in a `docker save` tarball's manifest.json (both the
                    classic "<hex>.json" and the OCI "blobs/sha256/<hex>" layouts).
archive_images      one record per pinned ref from the manifests of its archives: the image ID,
                    the tags the archive carries, the ref to use on the host, and whether the
                    archive holds the pinned image (with the reason when not).
image_resolved_ref  for one archive_images record and the host's docker_image_info images: the
                    reference that gives the archive's image on the host (the pin itself when
                    the engine resolves it, else its image_digest_tag), or "" when none does.
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError

_DIGEST = re.compile(r"^(?P<name>[^@\s]+)@sha256:(?P<hex>[0-9a-f]{64})$")


def image_archive_name(ref):
    ref = str(ref).strip()
    if not ref or re.search(r"\s", ref):
        raise AnsibleFilterError(f"image_archive_name: '{ref}' is not an image reference")
    return re.sub(r"[/:@]", "-", ref) + ".tar"


def image_digest_tag(ref):
    ref = str(ref).strip()
    match = _DIGEST.match(ref)
    return f"{match.group('name')}:sha256-{match.group('hex')}" if match else ref


def _manifest(manifest):
    try:
        data = json.loads(manifest) if isinstance(manifest, str) else manifest
        return data[0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AnsibleFilterError(f"not a docker save manifest.json ({exc})")


def archive_image_id(manifest):
    try:
        config = _manifest(manifest)["Config"]
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"archive_image_id: not a docker save manifest.json ({exc})")
    match = re.search(r"([0-9a-f]{64})(\.json)?$", str(config))
    if not match:
        raise AnsibleFilterError(f"archive_image_id: no image ID in the manifest's Config '{config}'")
    return "sha256:" + match.group(1)


def _familiar(ref):
    """docker.io/library/x:1 -> x:1, docker.io/a/b:1 -> a/b:1 (how the engine lists tags)."""
    ref = str(ref)
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def archive_images(manifests, refs):
    """manifests[i] is the manifest.json of refs[i]'s archive."""
    manifests, refs = list(manifests), list(refs)
    if len(manifests) != len(refs):
        raise AnsibleFilterError(f"archive_images: {len(manifests)} manifests for {len(refs)} images")
    records = []
    for manifest, ref in zip(manifests, refs):
        image_id = archive_image_id(manifest)
        tags = [_familiar(t) for t in (_manifest(manifest).get("RepoTags") or [])]
        usable = image_digest_tag(ref)
        match = _DIGEST.match(str(ref))
        problem = ""
        if match:
            if "sha256:" + match.group("hex") != image_id and _familiar(usable) not in tags:
                problem = (f"holds image {image_id} tagged {tags or 'nothing'}: neither its ID is the pinned "
                           f"digest nor does it carry the tag {usable} that scripts/lib/image-build.sh gives "
                           "the image a digest pin resolved to when it saves it")
        elif _familiar(ref) not in tags:
            problem = f"holds image {image_id} tagged {tags or 'nothing'}, not {ref}"
        records.append({"ref": ref, "archive": image_archive_name(ref), "id": image_id, "tags": tags,
                        "usable": usable, "digest_pin": bool(match), "ok": not problem, "problem": problem})
    return records


def image_resolved_ref(record, images):
    ref, usable, image_id = record["ref"], record["usable"], record["id"]
    for image in images or []:
        if image.get("Id") != image_id:
            continue
        if ref in (image.get("RepoDigests") or []) or ref in (image.get("RepoTags") or []):
            return ref
    for image in images or []:
        if image.get("Id") == image_id and usable in (image.get("RepoTags") or []):
            return usable
    return ""


class FilterModule:
    def filters(self):
        return {"image_archive_name": image_archive_name, "image_digest_tag": image_digest_tag,
                "archive_image_id": archive_image_id, "archive_images": archive_images,
                "image_resolved_ref": image_resolved_ref}
