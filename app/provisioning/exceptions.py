from typing import ClassVar

from app.errors import AppError, Code, Conflict, Forbidden, NotFound


class ProvisioningNotEnabled(Conflict):
    code = "provisioning-not-enabled"


class ProvisioningUnauthorized(AppError):
    """The phone sent no provisioning credentials, or wrong ones."""

    status_code = 401
    code = "provisioning-unauthorized"


class ProvisioningForbidden(Forbidden):
    code = "provisioning-forbidden"


class ProvisioningFileNotFound(NotFound):
    code = "provisioning-file-not-found"


class NoPhoneTransport(Conflict):
    code = "no-phone-transport"
    default_rule = Code.no_phone_transport


class LinkGone(AppError):
    status_code: ClassVar[int] = 410
    code = "provisioning-link-gone"
    default_rule = Code.provisioning_link_gone
