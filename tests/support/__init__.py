"""Pytest plugins shared by the whole suite (loaded by tests/conftest.py's ``pytest_plugins``).

Fixtures live here, in plugin modules, so no conftest imports another's; tests
import the helper functions they call from these modules by name.
"""
