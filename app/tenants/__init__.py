"""The tenant record: the companies using the call center, each with its own SIP domain. Every
domain takes the tenant from here; its routes, and the changes of a tenant that reach its
devices and extensions, are in app/tenancy, above them."""
