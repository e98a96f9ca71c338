"""pytest hook shared by the scenarios' verifiers (each tests/conftest.py imports it): with
MOLECULE_VERIFY_REVERSE=1 the test files run in reverse order (the tests inside a file keep
theirs), to prove that no file depends on the side effects of another. Each file sets up the
state it needs (docs/testing.md, "Verifiers")."""
from __future__ import annotations

import os


def pytest_collection_modifyitems(session, config, items):  # pylint: disable=unused-argument
    if os.environ.get("MOLECULE_VERIFY_REVERSE") == "1":
        files = list(dict.fromkeys(item.path for item in items))
        items[:] = [item for path in reversed(files) for item in items if item.path == path]
