"""The typed result of one run (what `Run.finish` returns) and the base of every verb's result.

A result is a pydantic model: `model_dump(mode="json")` is what `--json` prints and
`model_json_schema()` the schema published in schemas/results/. Optional keys that today's
output leaves out when they have no value are listed in `omit_none`: they are dropped from the
serialisation when None, so the keys printed are the same as before the results were typed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from harness import confidence, outcomes
from harness.journal_model import EvidenceMatch, RateInterval


class Result(BaseModel):
    """A verb's (or a run's) result: typed fields; `--json` is `model_dump(mode="json")`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    omit_none: ClassVar[tuple[str, ...]] = ()

    def omitted(self, data: dict[str, Any]) -> set[str]:
        """The keys left out of the serialisation: by default `omit_none`'s keys that are None."""
        return {k for k in self.omit_none if data.get(k) is None}

    @model_serializer(mode="wrap")
    def _serialise(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for k in self.omitted(data):
            data.pop(k, None)
        return data


class AttemptResult(Result):
    """One attempt of the reproduction: whether the symptom held, or why it could not run."""

    attempt: int
    observed: bool
    error: str | None
    symptom: dict[str, Any]


class RunResult(Result):
    """One run of a scenario cell: its verdict k/n, attempts, checks, where its evidence is."""

    run: str
    scenario: str
    role: str
    fix: str | None
    folder: str
    engine: str
    verdict: str
    observed: int
    attempts: int
    planned: int
    rate: str
    reason: str
    interval: RateInterval | None = None  # what k/n says of the true rate (Wilson)
    attempt_results: list[AttemptResult]
    checks: list[dict[str, Any]]
    checks_green: bool
    kept: bool
    seconds: float
    teardown_error: str | None = None
    report_errors: list[str] | None = None
    error: str | None = None
    hint: str | None = None  # present (maybe null) whenever `error` is
    # the customer's signatures (`evidence:`) and which the lab showed; only with evidence
    evidence: EvidenceMatch | None = None

    omit_none: ClassVar[tuple[str, ...]] = ("teardown_error", "report_errors", "error", "evidence")

    def omitted(self, data: dict[str, Any]) -> set[str]:
        out = super().omitted(data)
        if self.error is None:
            out.add("hint")
        return out

    def reproduction(self) -> outcomes.Reproduction:
        level = self.interval.confidence if self.interval else confidence.DEFAULT
        return outcomes.Reproduction(
            self.verdict, self.observed, self.attempts, self.planned, self.reason, level
        )


class NodeLive(Result):
    """A node of a lab that is up: its container, image, addresses per network, ready time.
    Keys run.json's node records gain later are kept (they are not this model's to refuse)."""

    model_config = ConfigDict(extra="allow")

    name: str
    container: str
    image: str
    addresses: dict[str, str]
    ready_s: float
    published: dict[str, str] = Field(
        default_factory=dict, description="container port -> 127.0.0.1:host port"
    )
    addresses6: dict[str, str] = Field(
        default_factory=dict, description="network -> IPv6 address, on the networks with IPv6"
    )


class UpResult(Result):
    """`lab up` (and the pytest plugin's bring-up): the run that stays up and its nodes."""

    run: str
    scenario: str
    fix: str | None
    folder: str
    engine: str
    nodes: list[NodeLive]
