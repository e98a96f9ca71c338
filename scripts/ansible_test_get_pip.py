"""Stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test downloads that script from ci-files.testing.ansible.com, which CI and these machines
cannot reach; scripts/sanity.sh puts this file in its cache (~/.ansible/test/cache/) instead.
With the same arguments it does what the real script does: pip into the empty virtual
environment (the interpreter's bundled wheel, no network), then `pip install` of what
ansible-test asked for (pip==<version>) from the package index of the machine's pip
configuration.

ansible-test runs pip with only HOME and PATH from the environment, so the pip settings given as
PIP_* variables (index, cert, find-links, PIP_CONFIG_FILE) would be lost: scripts/sanity.sh
saves them beside this file (pip-environment.json) and they are written into the virtual
environment's own pip.conf, which every later pip run in it reads. pip.conf files under /etc and
~/.config/pip apply anyway.

ensurepip runs in a subprocess on purpose: in-process it sets PIP_CONFIG_FILE=/dev/null in
os.environ, and the pip run after it would then ignore the machine's pip configuration.
"""
from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys


def site_config(saved: dict[str, str]) -> None:
    """Write the saved PIP_* settings into the virtual environment's pip.conf."""
    config = configparser.ConfigParser(interpolation=None)
    config_file = saved.get('PIP_CONFIG_FILE')
    if config_file and config_file != os.devnull and os.path.isfile(config_file):
        config.read(config_file)
    for name, value in saved.items():
        if name != 'PIP_CONFIG_FILE':
            if not config.has_section('global'):
                config.add_section('global')
            config.set('global', name[len('PIP_'):].lower().replace('_', '-'), value)
    if config.sections():
        with open(os.path.join(sys.prefix, 'pip.conf'), 'w', encoding='utf-8') as conf:
            config.write(conf)


def main() -> int:
    """Bootstrap pip, then install the requested packages."""
    saved_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pip-environment.json')
    if os.path.isfile(saved_path):
        with open(saved_path, encoding='utf-8') as saved:
            site_config(json.load(saved))
    # get-pip's own options, which `pip install` does not know
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run([sys.executable, '-m', 'pip', 'install', *args], check=False).returncode


if __name__ == '__main__':
    sys.exit(main())
