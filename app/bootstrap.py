"""First start on an empty database: a default tenant and keys to start exploring with."""

import logging

from sqlalchemy.exc import IntegrityError

from app.auth.models import Role
from app.auth.service import create_api_key
from app.db.session import Database
from app.tenants.models import Tenant
from app.tenants.repository import count_tenants

logger = logging.getLogger(__name__)

DEFAULT_SIP_DOMAIN = "default.antring.local"


async def bootstrap_if_empty(db: Database) -> bool:
    """Creates the default tenant with an admin key, and a platform key, when there is no tenant;
    prints the keys once. Returns whether it did."""
    try:
        async with db.session_scope() as session:
            if await count_tenants(session) > 0:
                return False
            tenant = Tenant(name="Default", sip_domain=DEFAULT_SIP_DOMAIN)
            session.add(tenant)
            await session.flush()
            _, admin_key = await create_api_key(
                session, tenant_id=tenant.id, role=Role.admin, name="bootstrap admin"
            )
            _, platform_key = await create_api_key(
                session, tenant_id=None, role=Role.admin, name="bootstrap platform"
            )
    except IntegrityError:
        return False  # another replica bootstrapped at the same moment
    print(
        "\n"
        "AntRing: first start, created tenant 'Default' "
        f"(sip_domain {DEFAULT_SIP_DOMAIN}, id {tenant.id}).\n"
        f"  tenant admin key: {admin_key}\n"
        f"  platform key:     {platform_key}   (send X-Tenant-ID to act on a tenant)\n"
        "These keys are shown only now. To use one in /docs, press Authorize and paste the key.\n",
        flush=True,
    )
    return True
