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
