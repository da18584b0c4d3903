"""The results store: one row per result (run, verification, matrix, gate, bisect, replay,
escalation), written as each finishes and rebuilt from the report folders by `lab index`.
SQLite beside the reports by default; one PostgreSQL for a team (docs/results-store.md)."""
