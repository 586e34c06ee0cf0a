"""Test kit of cmis: fixtures and helpers other test suites opt into with ``pytest_plugins``."""
