"""The postgres scenario's verifier: MOLECULE_VERIFY_REVERSE=1 runs the test files in reverse order
(molecule/shared/verify_order.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from verify_order import pytest_collection_modifyitems  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
