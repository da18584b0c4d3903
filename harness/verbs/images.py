"""`lab images build|ls|prune`: plain data out, progress through a callback; the CLI prints."""

from __future__ import annotations

from pathlib import Path

from harness.engine.api import Engine, ProgressFn
from harness.engine.connection import connect_engine
from harness.images import EnvPlan, LabPlan, plan_all
from harness.scenario.catalog import Catalog, load_catalog
from harness.verbs.results import ImageBuilt, ImageListed, ImagePruned


def build_all(
    root: Path,
    catalog: Catalog | None,
    engine: Engine | None = None,
    *,
    labs: list[str] | None = None,
    oses: list[str] | None = None,
    on_progress: ProgressFn | None = None,
    environments_only: bool = False,
) -> list[ImageBuilt]:
    """Build (or reuse) every environment, then every lab version on every OS it builds on.

    `labs` / `oses` restrict the set (unknown names: UsageError). Each environment and lab image
    is built at most once. One row per image, in build order:
    {"tag", "kind": env|lab, "name", "version", "os", "status": built|reused, "how", "seconds"}.
    A failed build raises InfraError (what was built before it stays on the engine).
    """
    catalog = catalog or load_catalog(root)
    engine = engine or connect_engine()
    env_plans, lab_plans = plan_all(catalog, labs=labs, oses=oses)
    rows: list[ImageBuilt] = []
    plans: list[EnvPlan | LabPlan] = [*env_plans, *([] if environments_only else lab_plans)]
    for plan in plans:
        outcome = engine.ensure_plan(plan, on_progress=on_progress)
        rows.append(
            ImageBuilt(
                tag=outcome.tag,
                **plan.describe(),
                status="built" if outcome.built else "reused",
                how=outcome.how,
                seconds=round(outcome.seconds, 1),
            )
        )
    return rows


def list_images(catalog: Catalog | None = None, engine: Engine | None = None) -> list[ImageListed]:
    """`lab images ls`: every image the harness built, one row per tag:
    {"tag", "id", "kind", "name", "version", "os", "inputs", "size_mb", "created", "current"}
    (`current`: the tag matches the catalog; None when no catalog is given)."""
    rows = (engine or connect_engine()).list_images(catalog)
    return [ImageListed.model_validate(r) for r in rows]


def prune_images(
    catalog: Catalog,
    *,
    remove_all: bool = False,
    lab: str | None = None,
    engine: Engine | None = None,
) -> list[ImagePruned]:
    """`lab images prune [--all] [--lab L]`: stale harness images (or all of them with --all),
    never one a container uses, never an image the harness did not build.

    Rows: {"tag", "id", "action": removed|kept|in-use|failed, "why"?}.
    """
    only = f"labharness/lab-{lab}:" if lab is not None else None
    rows = (engine or connect_engine()).prune_images(
        catalog, keep_current=not remove_all, only=only
    )
    return [ImagePruned.model_validate(r) for r in rows]
