"""Fixtures for the benchmark smoke tests (bench/test_bench_quick.py).

Puts bench/ on sys.path so the tests (and the scripts' own `_common` imports) resolve under
pytest's importlib import mode; the helpers themselves live in bench/_quick.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _quick import QuickRunCache  # noqa: E402  (needs the sys.path entry above)


@pytest.fixture(scope="session")
def quick_results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench_quick")


@pytest.fixture(scope="session")
def quick_runs(quick_results_dir: Path) -> QuickRunCache:
    """Lazily runs bench scripts in --quick mode (one at a time: 2-core machines)."""
    return QuickRunCache(quick_results_dir)
