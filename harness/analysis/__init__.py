"""Reading evidence (`lab analyze`): captures through tshark, logs through the labs' declared
signatures. An adapter layer: it imports the model (findings, the catalog), never the run,
the verbs or the CLI."""
