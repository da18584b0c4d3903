"""Verbs: what a command does, composed of runs. Each returns plain data the CLI prints."""
