# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Test: is the value an image reference pinned by tag or digest?

name:tag or name@sha256:<64 hex>, in Docker's reference grammar (an optional registry host with
port, lower-case path components); never :latest, never a bare name (Docker would add :latest).
The one rule for every role that ships images (preflights and the internal images role).
"""

from __future__ import annotations

import re

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
PINNED_IMAGE_RE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG})|@(?P<digest>sha256:[0-9a-f]{{64}}))$")


def pinned_image(value):
    if not isinstance(value, str):
        return False
    match = PINNED_IMAGE_RE.match(value)
    if not match or len(match.group("name")) > 255:
        return False
    return match.group("tag") != "latest"


class TestModule:
    def tests(self):
        return {"pinned_image": pinned_image}
