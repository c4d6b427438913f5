"""The real-framework suite (opt in: `pytest -m frameworks tests/frameworks`).

Writers run in a subprocess under the interpreter that has the frameworks installed
(`pip install '.[frameworks]'`, torch pinned to the CPU build): `FRAMEWORKS_PYTHON`, default this
interpreter; NeMo pins an older Lightning and Composer an older torch, so each may get its own,
`FRAMEWORKS_PYTHON_NEMO` / `FRAMEWORKS_PYTHON_COMPOSER` (docs/checkpoints.md, "Tests").  A framework
that is missing fails its tests; nothing is skipped.
"""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/frameworks/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.frameworks)
