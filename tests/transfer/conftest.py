"""Fixtures of the transfer tests: fresh datastores of each backend, as the copy engine's own tests use."""

from tests.storage.conftest import make_store  # noqa: F401 (a fixture, used by name)
