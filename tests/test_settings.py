import pytest
from pydantic import ValidationError

from app.settings import DEVELOPMENT_SECRET_KEY, Settings

STRONG_KEY = "k3y-7f1c9a0e5b2d4c8f9e1a3b5c7d9f0a2b"


@pytest.fixture(autouse=True)
def _no_secret_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTRING_SECRET_KEY", "ANTRING_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "secret_key",
    [
        None,
        "",
        "   ",
        "changeme",
        "CHANGE-ME",
        "secret",
        DEVELOPMENT_SECRET_KEY,
        "x" * 31,
    ],
)
def test_production_refuses_a_missing_placeholder_or_short_secret_key(
    secret_key: str | None,
) -> None:
    values = {} if secret_key is None else {"secret_key": secret_key}

    with pytest.raises(ValidationError, match="ANTRING_SECRET_KEY"):
        Settings(environment="production", **values)


def test_production_refuses_to_start_from_an_environment_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTRING_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="ANTRING_SECRET_KEY"):
        Settings()


def test_production_accepts_a_long_random_key_and_keeps_it_out_of_reprs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTRING_ENVIRONMENT", "production")
    monkeypatch.setenv("ANTRING_SECRET_KEY", STRONG_KEY)

    settings = Settings()

    assert settings.secret_key.get_secret_value() == STRONG_KEY
    assert not settings.uses_development_key
    assert STRONG_KEY not in repr(settings)
    assert STRONG_KEY not in str(settings.model_dump())


def test_development_falls_back_to_the_flagged_development_key() -> None:
    settings = Settings(environment="development")

    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.uses_development_key


def test_development_still_refuses_a_short_key() -> None:
    with pytest.raises(ValidationError, match="32 characters"):
        Settings(environment="development", secret_key="short")


def test_no_proxy_is_believed_unless_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's own variable does not list one either.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")

    assert Settings().forwarded_allow_ips == []


def test_proxies_are_listed_by_address_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTRING_FORWARDED_ALLOW_IPS", '["10.0.0.5", "10.1.0.0/16", "::1"]')

    assert Settings().forwarded_allow_ips == ["10.0.0.5", "10.1.0.0/16", "::1"]
    assert Settings(forwarded_allow_ips=["*"]).forwarded_allow_ips == ["*"]


@pytest.mark.parametrize(
    "proxies",
    [["proxy.internal"], ["10.1.0.1/16"], ["10.0.0.5", "*"], ["10.0.0.300"]],
    ids=["a-name", "host-bits-set", "any-among-others", "not-an-address"],
)
def test_a_proxy_that_is_not_an_address_or_network_is_refused(proxies: list[str]) -> None:
    with pytest.raises(ValidationError, match="is not an IP address or network"):
        Settings(forwarded_allow_ips=proxies)
