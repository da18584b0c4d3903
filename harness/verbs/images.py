"""`lab images build|ls|prune`: plain data out, progress through a callback; the CLI prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.engine import images as engine_images
from harness.engine.images import ProgressFn, ensure_plan
from harness.images import EnvPlan, LabPlan, plan_all
from harness.scenario.catalog import Catalog, load_catalog


def build_all(
    root: Path,
    catalog: Catalog | None,
    client: Any,
    labs: list[str] | None = None,
    oses: list[str] | None = None,
    on_progress: ProgressFn | None = None,
    environments_only: bool = False,
) -> list[dict[str, Any]]:
    """Build (or reuse) every environment, then every lab version on every OS it builds on.

    `labs` / `oses` restrict the set (unknown names: UsageError). Each environment and lab image
    is built at most once. One row per image, in build order:
    {"tag", "kind": env|lab, "name", "version", "os", "status": built|reused, "how", "seconds"}.
    A failed build raises InfraError (what was built before it stays on the engine).
    """
    catalog = catalog or load_catalog(root)
    env_plans, lab_plans = plan_all(catalog, labs=labs, oses=oses)
    rows: list[dict[str, Any]] = []
    plans: list[EnvPlan | LabPlan] = [*env_plans, *([] if environments_only else lab_plans)]
    for plan in plans:
        outcome = ensure_plan(client, plan, on_progress=on_progress)
        rows.append(
            {
                "tag": outcome.tag,
                **plan.describe(),
                "status": "built" if outcome.built else "reused",
                "how": outcome.how,
                "seconds": round(outcome.seconds, 1),
            }
        )
    return rows


def list_images(client: Any, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """`lab images ls`: every image the harness built, one row per tag:
    {"tag", "id", "kind", "name", "version", "os", "inputs", "size_mb", "created", "current"}
    (`current`: the tag matches the catalog; None when no catalog is given)."""
    return engine_images.list_images(client, catalog)


def prune_images(
    client: Any, catalog: Catalog, *, remove_all: bool = False, lab: str | None = None
) -> list[dict[str, Any]]:
    """`lab images prune [--all] [--lab L]`: stale harness images (or all of them with --all),
    never one a container uses, never an image the harness did not build.

    Rows: {"tag", "id", "action": removed|kept|in-use|failed, "why"?}.
    """
    only = f"labharness/lab-{lab}:" if lab is not None else None
    return engine_images.prune_images(client, catalog, keep_current=not remove_all, only=only)
