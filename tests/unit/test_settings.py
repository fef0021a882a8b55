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
