# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Test: is the value an IPv4 or IPv6 address (no prefix length, no host name)?"""

from __future__ import annotations

import ipaddress


def ip_address(value):
    try:
        ipaddress.ip_address(str(value).strip("[]"))
    except ValueError:
        return False
    return True


class TestModule:
    def tests(self):
        return {"ip_address": ip_address}
