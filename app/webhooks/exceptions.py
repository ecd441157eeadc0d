from app.errors import Code, InvalidInput, NotFound


class WebhookNotFound(NotFound):
    code = "webhook-not-found"
    default_rule = Code.webhook_not_found


class DeliveryNotFound(NotFound):
    code = "delivery-not-found"
    default_rule = Code.delivery_not_found


class WebhookUrlRefused(InvalidInput):
    code = "webhook-url-refused"
