from app.errors import Conflict, NotFound


class DeviceNotFound(NotFound):
    code = "device-not-found"
    title = "Device not found"


class DeviceNameTaken(Conflict):
    code = "device-name-taken"
    title = "Device name taken"


class MacAddressTaken(Conflict):
    code = "mac-address-taken"
    title = "MAC address taken"


class SipAccountNotFound(NotFound):
    """No device has this SIP username in the tenant of this domain (or the key may not see
    it): what a registrar lookup and a registration report answer."""

    code = "sip-account-not-found"
    title = "SIP account not found"
