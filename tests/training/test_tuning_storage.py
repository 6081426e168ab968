"""Where a study lives: URLs shown without passwords, creating and joining a study."""

from __future__ import annotations

import optuna
import pytest

from rldispatch.training.days import PresetDays
from rldispatch.training.tuning_settings import HeartbeatSettings, TuneError, TuneSettings
from rldispatch.training.tuning_storage import (
    SETTINGS_ATTR,
    default_storage_url,
    masked_url,
    open_storage,
    open_study,
    storage_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://tuner:s3cret@db.example.org:5432/tuning",
            "postgresql+psycopg://tuner:***@db.example.org:5432/tuning",
        ),
        (
            "postgresql+psycopg://tuner@db.example.org/tuning?password=s3cret&sslmode=require",
            "postgresql+psycopg://tuner@db.example.org/tuning?password=***&sslmode=require",
        ),
        (
            "postgresql://tuner:a@db/tuning?sslpassword=s3cret",
            "postgresql://tuner:***@db/tuning?sslpassword=***",
        ),
        ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
        ("not a url://me:s3cret@host?Password=s3cret", "not a url://me:***@host?Password=***"),
    ],
)
def test_a_url_is_shown_without_its_passwords(url, shown):
    assert masked_url(url) == shown
    assert "s3cret" not in masked_url(url)


def test_a_plain_path_is_a_sqlite_file(tmp_path):
    assert storage_url(str(tmp_path / "s.db")) == f"sqlite:///{tmp_path / 's.db'}"
    assert default_storage_url(tmp_path) == f"sqlite:///{tmp_path / 'study.db'}"
    assert storage_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def _settings(agent: str = "dqn", **options) -> TuneSettings:
    return TuneSettings(
        agent=agent, days=PresetDays("classic"), **{"max_days": 2, "eval_days": 1, **options}
    )


def test_a_study_stores_its_settings_and_is_joined_with_the_same(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", HeartbeatSettings())
    created = open_study(storage, "shared", _settings())
    assert created.created and created.sampler_seed == 0
    assert created.study.user_attrs[SETTINGS_ATTR] == _settings().to_dict()
    joined = open_study(storage, "shared", _settings())
    assert not joined.created


def test_joining_a_study_with_other_settings_is_refused(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", HeartbeatSettings())
    open_study(storage, "shared", _settings())
    with pytest.raises(TuneError, match="max_days: study has 2, this worker 3"):
        open_study(storage, "shared", _settings(max_days=3))


def test_a_worker_tuning_another_kind_is_refused_in_one_line(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", HeartbeatSettings())
    open_study(storage, "shared", _settings("dqn"))
    with pytest.raises(TuneError) as refused:
        open_study(storage, "shared", _settings("pairwise"))
    message = str(refused.value)
    assert message == (
        "--agent pairwise: study shared tunes the dqn agent; start this worker with "
        "--agent dqn or choose another --study"
    )


def test_a_reporting_worker_adopts_the_studys_settings(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", HeartbeatSettings())
    open_study(storage, "shared", _settings("dqn", max_days=4))
    report = open_study(storage, "shared", _settings("pairwise"), adopt_settings=True)
    assert (report.settings.agent, report.settings.max_days) == ("dqn", 4)


def test_a_study_that_minimises_is_not_joined(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=url, study_name="other", direction="minimize")
    with pytest.raises(TuneError, match="minimises"):
        open_study(open_storage(url, HeartbeatSettings()), "other", _settings())


def test_a_malformed_url_is_refused_without_its_password():
    with pytest.raises(TuneError, match="not a usable database URL") as refused:
        open_storage("nosuchdriver://me:s3cret@host/db", HeartbeatSettings())
    assert "s3cret" not in str(refused.value)
