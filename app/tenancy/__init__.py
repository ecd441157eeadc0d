"""A tenant as a whole: the /v1/tenants routes, and the changes of a tenant that reach every
device and extension in it (above app/devices and app/extensions, which the tenant record is
below)."""
