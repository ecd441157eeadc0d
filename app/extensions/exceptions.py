from app.errors import Conflict, InvalidInput, NotFound


class ExtensionNotFound(NotFound):
    code = "extension-not-found"
    title = "Extension not found"


class ExtensionTaken(Conflict):
    code = "extension-taken"
    title = "Extension taken"


class ExtensionShadowsEmergency(InvalidInput):
    code = "extension-shadows-emergency"
    title = "Extension shadows an emergency number"
