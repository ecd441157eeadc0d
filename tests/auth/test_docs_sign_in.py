"""/docs signs a person in at the platform's identity provider, as a browser does: headless
Chromium opens Swagger UI on the running service (`antring serve`, real HTTP), presses
Authorize, signs in at the provider's own page (a real oidc-provider, tests/idp) through the
authorization code flow with PKCE, and tries routes with the token it came back with."""

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.api import TenantKeys, create_user
from tests.helpers.browser import chromium, require_chromium
from tests.helpers.idp import IdentityProvider, require_provider
from tests.helpers.served import serve

pytestmark = pytest.mark.browser

DOCS_CLIENT = "api-docs"
WAIT = 20.0


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    require_chromium()
    require_provider()
    provider = IdentityProvider(tmp_path_factory.mktemp("idp"))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


def _until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """The first truthy answer of `condition`, polled; fails naming `what` after `timeout`."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition()
        except (StaleElementReferenceException, WebDriverException):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s", pytrace=False)
        time.sleep(0.1)


def _click(driver: Any, element: Any) -> None:
    """Clicks `element` where a person would see it: scrolled to the middle of the view."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _sign_in_card(driver: Any) -> Any:
    """The authorize dialog's card for the provider's sign-in (the one with PKCE)."""
    from selenium.webdriver.common.by import By

    for card in driver.find_elements(By.CSS_SELECTOR, ".modal-ux .auth-container"):
        if "with PKCE" in card.find_element(By.TAG_NAME, "h4").text:
            return card
    return None


def _sign_in(driver: Any, account_id: str) -> list[str]:
    """Authorize → the provider's sign-in page in Swagger UI's pop-up → back, authorized.
    Returns the titles of the ways in the dialog offered."""
    from selenium.webdriver.common.by import By

    docs_window = driver.current_window_handle
    _click(driver, driver.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize"))
    card = _until(lambda: _sign_in_card(driver), "the dialog offered the provider's sign-in")
    offered = [
        title.text
        for title in driver.find_elements(By.CSS_SELECTOR, ".modal-ux .auth-container h4")
    ]
    _click(driver, card.find_element(By.CSS_SELECTOR, "button.authorize"))

    popup = _until(
        lambda: next((h for h in driver.window_handles if h != docs_window), None),
        "Swagger UI opened the provider's sign-in page",
    )
    driver.switch_to.window(popup)
    login = _until(lambda: driver.find_element(By.ID, "login"), "the provider asked who signs in")
    login.send_keys(account_id)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _until(lambda: "Allow access" in driver.title, "the provider asked for consent")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    # The pop-up comes back to /docs/oauth2-redirect, hands the code to /docs and closes.
    _until(lambda: popup not in driver.window_handles, "the sign-in came back to /docs")
    driver.switch_to.window(docs_window)
    card = _until(lambda: _sign_in_card(driver), "the dialog still open")
    _until(
        lambda: (
            "Authorized" in card.text
            and any(b.text == "Logout" for b in card.find_elements(By.TAG_NAME, "button"))
        ),
        f"/docs signed in as {account_id} (the card says Authorized and offers Logout)",
    )
    _click(driver, card.find_element(By.CSS_SELECTOR, "button.btn-done"))
    return offered


def _try(driver: Any, tag: str, operation_id: str) -> tuple[int, Any]:
    """Try it out → Execute on one operation; its answer's status and body."""
    from selenium.webdriver.common.by import By

    block = driver.find_element(By.ID, f"operations-{tag}-{operation_id}")
    _click(driver, block.find_element(By.CSS_SELECTOR, ".opblock-summary-control"))
    _click(driver, _until(lambda: block.find_element(By.CSS_SELECTOR, ".try-out__btn"), "Try"))
    _click(driver, _until(lambda: block.find_element(By.CSS_SELECTOR, "button.execute"), "Run"))
    status = _until(
        lambda: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        ).text.strip(),
        f"{operation_id} answered",
    )
    body = block.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response .response-col_description pre"
    ).text
    return int(status.split()[0]), json.loads(body)


def _browse(url: str, account: str, workdir: Path) -> dict[str, Any]:
    """Signs in on /docs as `account`, then tries the Users table and the webhooks."""
    from selenium.webdriver.common.by import By

    with chromium(workdir) as driver:
        driver.get(f"{url}/docs")
        _until(
            lambda: driver.find_elements(By.ID, "operations-users-list_users"),
            "/docs showed the document",
        )
        offered = _sign_in(driver, account)
        return {
            "offered": offered,
            "users": _try(driver, "users", "list_users"),
            "webhooks": _try(driver, "webhooks", "list_webhooks"),
        }


async def test_a_person_signs_in_on_docs_and_tries_what_their_role_allows(
    migrated_url: str,
    idp: IdentityProvider,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    tmp_path: Path,
) -> None:
    mine = await create_user(client, tenant.admin, display_name="Trần Thị Lan")
    await create_user(client, other_tenant.admin, display_name="Phạm Thu Hà")
    account = f"lan.operator-{tenant.id.hex[:8]}"
    idp.add_account(
        account,
        tenant_id=str(tenant.id),
        roles=["operator"],
        name="Trần Thị Lan",
        email="lan.operator@callcenter.example",
    )

    with serve(
        tmp_path / "service",
        migrated_url,
        oidc_issuer=idp.issuer,
        oidc_audience=idp.audience,
        oidc_docs_client_id=DOCS_CLIENT,
    ) as url:
        # /docs's own public client: it sends people back to the service's oauth2-redirect
        # page, and so lets /docs exchange the code at the provider from the service's origin.
        idp.add_public_client(DOCS_CLIENT, [f"{url}/docs/oauth2-redirect"])
        tried = await asyncio.to_thread(_browse, url, account, tmp_path)

    # The key, call control's Basic, and one way for people: the provider's sign-in with the
    # authorization code and PKCE (no implicit, client-credentials or refresh-token grant).
    assert tried["offered"] == [
        "HTTPBearer  (http, Bearer)",
        "CallControlBasic  (http, Basic)",
        "OpenIdConnect (OAuth2, authorizationCode with PKCE)",
    ]
    status, page = tried["users"]
    assert status == 200, page
    assert [user["id"] for user in page["items"]] == [mine["id"]]
    assert page["items"][0]["display_name"] == "Trần Thị Lan"
    status, refused = tried["webhooks"]
    assert status == 403, refused
    assert refused["code"] == "role-forbidden"
    assert refused["detail"] == "The role operator may not do this."
