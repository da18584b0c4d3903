"""The engine adapter: the only package that imports the Docker SDK.

Above it, code sees `harness.engine.api` (the `Engine` interface and the plain dataclasses that
cross it) and `harness.engine.connection` (connect_engine, targets); an import-linter contract
holds that line. `dockerengine.DockerEngine` implements the interface over the modules here;
`fake.FakeEngine` implements it in memory for the run layer's unit tests.
"""
