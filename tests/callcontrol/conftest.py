import httpx
import pytest

from tests.helpers.api import TenantKeys
from tests.helpers.callcontrol import Agent, new_agent


@pytest.fixture
async def agent(client: httpx.AsyncClient, tenant: TenantKeys) -> Agent:
    return await new_agent(client, tenant)
