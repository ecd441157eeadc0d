"""scim2-tester, the SCIM RFCs' compliance checker (a client nobody here wrote), against the
service as served (`antring serve`, real HTTP): every check it has for Users passes
(discovery, creation, reading, filters, replacement, PATCH add/replace/remove, deletion)."""

import random
from pathlib import Path

import httpx
import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import ScimProvider
from scim2_tester import Status, check_server

from tests.helpers.api import TenantKeys
from tests.helpers.served import serve
from tests.scim.test_users import AGENT


async def test_every_users_check_of_scim2_tester_passes(
    client: httpx.AsyncClient, tenant: TenantKeys, migrated_url: str, tmp_path: Path
) -> None:
    with (
        serve(tmp_path, migrated_url) as url,
        httpx2.Client(base_url=f"{url}/scim/v2", headers=tenant.scim, timeout=30) as http,
    ):
        scim = SyncSCIMClient(http, provider=ScimProvider())
        # The models the service publishes at its discovery endpoints...
        scim.discover()
        agent = scim.provider.model_for(AGENT)
        assert agent is not None
        # ...with the one thing a SCIM schema cannot say (RFC 7643 has no ranges): the
        # minute limits the service's rule takes, for the checker to pick from (not 0: the
        # checker takes a falsy example for none).
        agent.model_fields["limit_minutes"].examples = [1, 600, 1_000_000]
        # And the extension numbers: 4 digits (none an emergency number's prefix), drawn
        # from a fixed seed so that two of the checker's agents never draw the same one.
        agent.model_fields["extensions"].examples = [str(n) for n in range(2000, 10_000)]
        random.seed(20261207)
        results = check_server(scim, resource_types=["User"])
    assert results
    failed = [
        f"{result.title}: {result.reason}"
        for result in results
        if result.status not in (Status.SUCCESS, Status.COMPLIANT, Status.SKIPPED)
    ]
    assert not failed, "\n".join(failed)
    titles = {result.title for result in results}
    assert len(titles) > 10
