from app.errors import Code, Conflict, InvalidInput, NotFound


class ExtensionNotFound(NotFound):
    code = "extension-not-found"


class ExtensionTaken(Conflict):
    code = "extension-taken"
    default_rule = Code.extension_taken


class ExtensionShadowsEmergency(InvalidInput):
    code = "extension-shadows-emergency"
