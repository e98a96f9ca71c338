# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0
"""What the collection's read-only modules report about a path (moneytracker_stack_info,
moneytracker_host_info): the roles compare it with what their tasks would leave there (filter
paths_differing), so both must report it the same way."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import stat as stat_mod


def path_info(path, checksum=False):
    """None when missing; else dir, mode (octal string), uid, gid, mtime, the link's target for a
    symbolic link (followed for the rest), and with checksum the SHA-1 of a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    out = {"dir": stat_mod.S_ISDIR(st.st_mode), "mode": "%04o" % stat_mod.S_IMODE(st.st_mode),
           "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime}
    if os.path.islink(path):
        out["link"] = os.readlink(path)
    if checksum and stat_mod.S_ISREG(st.st_mode):
        digest = hashlib.sha1()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        out["sha1"] = digest.hexdigest()
    return out
