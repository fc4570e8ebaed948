"""Helpers for testing Liferaft and its plugins (third parties may use them too).

* :mod:`liferaft.testing.conformance` -- one conformance suite per driver
  kind, to run against every registered driver of that kind.

Nothing in the controller imports this package (an import-linter contract
says so).
"""
