"""trackers.yaml: secrets only from the environment, clear errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import USAGE
from harness.trackers import TrackerConfigError, get_tracker
from harness.trackers.config import load_config
from harness.trackers.jira import JiraTracker
from harness.trackers.local import LocalTracker
from harness.trackers.redmine import RedmineTracker

KEY = "5e1f0c3a9d2b4c6e8f0a1b2c3d4e5f6a7b8c9d0e"


def write(root: Path, text: str) -> Path:
    path = root / "trackers.yaml"
    path.write_text(text)
    return path


GOOD = """
trackers:
  redmine-lab:
    kind: redmine
    url: "http://127.0.0.1:3000/"
    project: support
    api_key_env: LABHARNESS_REDMINE_KEY
    status: In Progress
    custom_fields: {Customer: acme}
    retries: [0.1, 0.2]
    timeout: 5
  jira:
    kind: jira
    url: https://example.atlassian.net
    email_env: LABHARNESS_JIRA_EMAIL
    token_env: LABHARNESS_JIRA_TOKEN
"""


def test_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, GOOD)
    monkeypatch.setenv("LABHARNESS_REDMINE_KEY", KEY)
    monkeypatch.setenv("LABHARNESS_JIRA_EMAIL", "me@example.com")
    monkeypatch.setenv("LABHARNESS_JIRA_TOKEN", "jira-token-value")
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    red = get_tracker("redmine-lab", root=tmp_path)
    assert isinstance(red, RedmineTracker)
    assert red.url == "http://127.0.0.1:3000" and red.status == "In Progress"
    assert red.custom_fields == {"Customer": "acme"}
    assert red.retry.delays == (0.1, 0.2) and red.retry.timeout == 5
    assert KEY not in repr(red)
    jira = get_tracker("jira", root=tmp_path)
    assert isinstance(jira, JiraTracker) and "jira-token-value" not in repr(jira)
    local = get_tracker(None, root=tmp_path)
    assert isinstance(local, LocalTracker)
    assert local.directory == tmp_path / "escalations"


def test_no_file_means_only_local(tmp_path: Path) -> None:
    assert set(load_config(tmp_path).entries) == {"local"}
    with pytest.raises(TrackerConfigError, match="no tracker named 'redmine'") as err:
        get_tracker("redmine", root=tmp_path)
    assert err.value.exit_code == USAGE


def test_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        f"trackers:\n  r:\n    kind: redmine\n    url: http://127.0.0.1:3000\n    api_key: {KEY}\n",
    )
    with pytest.raises(
        TrackerConfigError, match=r"secret written in trackers\.yaml is refused"
    ) as e:
        get_tracker("r", root=tmp_path, config=cfg)
    assert KEY not in str(e.value) and e.value.exit_code == USAGE
    assert "api_key_env" in str(e.value)


def test_secret_put_where_the_variable_name_goes_is_refused_without_echo(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"trackers:\n  r:\n    kind: redmine\n    url: http://127.0.0.1:3000\n"
        f"    api_key_env: {KEY}\n",
    )
    with pytest.raises(TrackerConfigError, match="NAME of an environment variable") as e:
        get_tracker("r", root=tmp_path)
    assert KEY not in str(e.value)


def test_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "trackers:\n  j:\n    kind: jira\n    url: https://me:hunter22@x.atlassian.net\n"
        "    token_env: T\n",
    )
    with pytest.raises(TrackerConfigError, match="credentials in the URL") as e:
        get_tracker("j", root=tmp_path)
    assert "hunter22" not in str(e.value)


def test_missing_env_var_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, GOOD)
    monkeypatch.delenv("LABHARNESS_REDMINE_KEY", raising=False)
    with pytest.raises(TrackerConfigError) as e:
        get_tracker("redmine-lab", root=tmp_path)
    assert e.value.exit_code == USAGE
    assert "environment variable LABHARNESS_REDMINE_KEY is not set" in str(e.value)


def test_typos_and_bad_values(tmp_path: Path) -> None:
    write(tmp_path, "trackers:\n  r:\n    kind: redmin\n    url: http://x\n")
    with pytest.raises(TrackerConfigError, match="did you mean 'redmine'"):
        get_tracker("r", root=tmp_path)
    write(tmp_path, "trackers:\n  r:\n    kind: redmine\n    url: http://x\n    projct: s\n")
    with pytest.raises(TrackerConfigError, match="did you mean 'project'"):
        get_tracker("r", root=tmp_path)
    write(tmp_path, "trackers:\n  r:\n    kind: redmine\n    url: http://x\n")
    with pytest.raises(TrackerConfigError, match="api_key_env is required"):
        get_tracker("r", root=tmp_path)
    write(tmp_path, "trackers:\n  r: {kind: redmine, url: http://x, api_key_env: K, retries: 3}\n")
    with pytest.raises(TrackerConfigError, match="retries"):
        get_tracker("r", root=tmp_path)
    write(tmp_path, "trackers:\n  r: [\n")
    with pytest.raises(TrackerConfigError, match=r"trackers.yaml:\d+:\d+: not valid YAML"):
        get_tracker("r", root=tmp_path)


def test_local_path_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    write(tmp_path, "trackers:\n  local: {kind: local, path: out/esc}\n")
    local = get_tracker(None, root=tmp_path)
    assert isinstance(local, LocalTracker) and local.directory == tmp_path / "out" / "esc"
