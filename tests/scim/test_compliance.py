"""scim2-tester, the SCIM RFCs' compliance checker (a client nobody here wrote), against the
service as served (`antring serve`, real HTTP): every check it has for Users passes
(discovery, creation, reading, filters, replacement, PATCH add/replace/remove, deletion); and
scim2-client's Bulk, which checks a request against the limits the service advertises and
reads the answer by RFC 7644's rules."""

import random
from pathlib import Path

import httpx
import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import BulkOperation, BulkRequest, BulkResponse, PatchOp, ScimProvider
from scim2_tester import Status, check_server

from tests.helpers.api import TenantKeys
from tests.helpers.served import serve
from tests.scim.test_users import AGENT, USER


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


async def test_scim2_clients_bulk_reads_the_answer(
    client: httpx.AsyncClient, tenant: TenantKeys, migrated_url: str, tmp_path: Path
) -> None:
    with (
        serve(tmp_path, migrated_url) as url,
        httpx2.Client(base_url=f"{url}/scim/v2", headers=tenant.scim, timeout=30) as http,
    ):
        scim = SyncSCIMClient(http, provider=ScimProvider())
        scim.discover()
        user = scim.provider.model_for(USER)
        assert user is not None
        assert scim.provider.config is not None
        assert scim.provider.config.bulk.supported is True
        joiners = [
            user(user_name=f"bulk{n}@acme.vn", external_id=f"bulk-{n}", display_name=f"Bulk {n}")
            for n in range(3)
        ]
        request = BulkRequest[user](
            operations=[
                *(
                    BulkOperation[user](method="POST", path="/Users", bulk_id=f"j{n}", data=joiner)
                    for n, joiner in enumerate(joiners)
                ),
                BulkOperation[user](
                    method="PATCH",
                    path="/Users/bulkId:j0",
                    data=PatchOp[user].model_validate(
                        {"Operations": [{"op": "replace", "path": "active", "value": False}]}
                    ),
                ),
                # Taken by the first: it fails, the others stand.
                BulkOperation[user](
                    method="POST",
                    path="/Users",
                    bulk_id="again",
                    data=user(user_name="bulk0@acme.vn", external_id="other"),
                ),
                BulkOperation[user](method="DELETE", path="/Users/bulkId:j2"),
            ]
        )
        answer = scim.bulk(request)
        assert isinstance(answer, BulkResponse), answer
        outcomes = [(op.bulk_id, op.status) for op in answer.operations]
        assert outcomes == [
            ("j0", 201), ("j1", 201), ("j2", 201), (None, 200), ("again", 409), (None, 204)
        ]  # fmt: skip
        assert answer.operations[4].response.scim_type == "uniqueness"
        # A request over the advertised maxOperations is not even sent.
        many = BulkRequest[user](
            operations=[
                BulkOperation[user](method="DELETE", path=f"/Users/{n}") for n in range(1001)
            ]
        )
        try:
            scim.bulk(many)
        except Exception as error:
            assert "1000" in str(error)
        else:
            raise AssertionError("a request over maxOperations was sent")
