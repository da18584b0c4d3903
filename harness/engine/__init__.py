"""The Docker engine: the only package that imports the Docker SDK.

Everything above talks to it through plain data (harness.scenario.resolved), so a second engine
(a Kubernetes cluster, say) can plug in beside it without touching the run or the verbs.
"""
