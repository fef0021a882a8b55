import pytest

from infra.settings import SettingsError, load_settings


def test_defaults_start_embedded_servers_when_no_urls_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.runtime.database_url is None and settings.runtime.nats_url is None
    assert settings.web.port == 8000


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DATABASE_URL", "not a url", "DATABASE_URL must start with postgresql://"),
        ("DATABASE_URL", "postgresql://host:99999999/db", "DATABASE_URL is not a URL"),
        ("DATABASE_URL", "mysql://root@localhost/db", "must start with postgresql://"),
        ("NATS_URL", "http://localhost:4222", "NATS_URL must start with nats://"),
        ("PIPELINE_WEB_PORT", "eighty", "PIPELINE_WEB_PORT"),
    ],
)
def test_a_bad_setting_is_refused_with_a_one_line_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_several_nats_servers_and_postgresql_hosts_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", "nats://a:4222, nats://b:4223,nats://c:4224")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db1:5432,db2:5433/pipeline?target_session_attrs=read-write")
    settings = load_settings()
    assert settings.runtime.nats_url == "nats://a:4222,nats://b:4223,nats://c:4224"
    assert settings.runtime.database_url == "postgresql://app@db1:5432,db2:5433/pipeline?target_session_attrs=read-write"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("NATS_URL", "nats://a:4222,http://b:4222", "NATS_URL (server 2 of 2) must start with nats://"),
        ("NATS_URL", "nats://a:4222,nats://:4223", "NATS_URL (server 2 of 2) names no host"),
        ("DATABASE_URL", "postgresql://db1:5432,db2:port/x", "DATABASE_URL is not a URL"),
        ("PIPELINE_NATS_REPLICAS", "7", "PIPELINE_NATS_REPLICAS"),
    ],
)
def test_a_bad_server_among_several_is_named_by_its_place(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert fragment in str(caught.value)
