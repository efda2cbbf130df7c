"""Fixtures for the integration tests live in labenv.py; imported here so pytest finds them."""

from labenv import env  # noqa: F401
