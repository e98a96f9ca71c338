# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Options every moneytracker_db_* module shares (the host tool's path and configuration)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  tool:
    description:
      - Path of the host tool on the managed host.
    type: path
    default: /usr/local/sbin/moneytracker-db
  config:
    description:
      - Configuration file of the tool, passed as C(--config). Default is the tool's
        (C(/etc/moneytracker-db/config.json), or C($MONEYTRACKER_DB_CONFIG)).
    type: path
'''
