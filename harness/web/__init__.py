"""`lab serve`'s web application: the results index (harness.store) as pages and their JSON
twins under /api, read-only, with the files of the indexed report folders served safely.
An adapter over the store and the reports folders only: it imports no run, verb, engine or
CLI (an import-linter contract holds it); docs/dashboard.md."""

from harness.web.app import create_app

__all__ = ["create_app"]
