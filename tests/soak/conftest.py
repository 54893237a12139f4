"""Soak tests: long, bounded, loopback-only runs, skipped unless TIERGATE_SOAK=1."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long soak run; set TIERGATE_SOAK=1 to run it")
