from app.errors import Code, Conflict, NotFound


class DeviceNotFound(NotFound):
    code = "device-not-found"
    default_rule = Code.device_not_found


class DeviceNameTaken(Conflict):
    code = "device-name-taken"
    default_rule = Code.device_name_taken


class MacAddressTaken(Conflict):
    code = "mac-address-taken"
    default_rule = Code.mac_address_taken


class SipAccountNotFound(NotFound):
    """No device has this SIP username in the tenant of this domain (or the key may not see
    it): what a registrar lookup and a registration report answer."""

    code = "sip-account-not-found"
    default_rule = Code.sip_account_not_found
