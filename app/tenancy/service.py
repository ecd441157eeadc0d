"""Changes of a tenant that reach everything in it: new settings its extensions must respect and
its devices must be hashed again for, and its deletion with what the SIP edges must forget."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher
from app.devices import service as devices
from app.extensions import service as extensions
from app.tenants import service as tenants
from app.tenants.exceptions import EmergencyNumberInUse
from app.tenants.models import Tenant
from app.tenants.schemas import TenantUpdate


async def update_tenant(
    session: AsyncSession, cipher: PasswordCipher, *, tenant: Tenant, data: TenantUpdate
) -> Tenant:
    """A tenant's new settings. New emergency numbers must not be shadowed by an existing
    extension; a new SIP domain (the digest realm) gives every device its HA1 again."""
    changes = data.changes()
    if "emergency_numbers" in changes:
        shadowed = await extensions.shadowed_extensions(
            session, tenant_id=tenant.id, emergency_numbers=changes["emergency_numbers"]
        )
        if shadowed:
            raise EmergencyNumberInUse(field="body.emergency_numbers", extensions=shadowed)
    realm_changed = "sip_domain" in changes and changes["sip_domain"] != tenant.sip_domain
    if realm_changed:
        # The edges know the accounts under the old domain: none of them signs in there now.
        await devices.end_registrations(session, tenant=tenant, reason="domain_changed")
    await tenants.update_tenant(session, tenant=tenant, data=data)
    if realm_changed:
        await devices.rehash_tenant_devices(
            session, cipher, tenant_id=tenant.id, realm=tenant.sip_domain
        )
    return tenant


async def delete_tenant(session: AsyncSession, *, tenant: Tenant) -> None:
    """Deletes the tenant with everything it has; the SIP edges forget its devices."""
    await devices.forget_devices(session, tenant=tenant)
    await tenants.delete_tenant(session, tenant=tenant)
