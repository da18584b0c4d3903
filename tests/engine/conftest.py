"""Engine-test fixtures kept in their own modules."""

from tests.engine.conftest_cluster import cluster, engine2  # noqa: F401  (session fixtures)
