from typing import ClassVar

from app.errors import AppError, Conflict, Forbidden, NotFound


class ProvisioningNotEnabled(Conflict):
    code = "provisioning-not-enabled"
    title = "Provisioning not enabled"


class ProvisioningUnauthorized(AppError):
    """The phone sent no provisioning credentials, or wrong ones."""

    status_code = 401
    code = "provisioning-unauthorized"
    title = "Provisioning credentials needed"


class ProvisioningForbidden(Forbidden):
    code = "provisioning-forbidden"
    title = "Provisioning refused"


class ProvisioningFileNotFound(NotFound):
    code = "provisioning-file-not-found"
    title = "Provisioning file not found"


class NoPhoneTransport(Conflict):
    code = "no-phone-transport"
    title = "No transport for phones"


class LinkGone(AppError):
    status_code: ClassVar[int] = 410
    code = "provisioning-link-gone"
    title = "Provisioning link used or expired"
