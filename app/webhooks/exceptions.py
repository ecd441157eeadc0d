from app.errors import InvalidInput, NotFound


class WebhookNotFound(NotFound):
    code = "webhook-not-found"
    title = "Webhook endpoint not found"


class DeliveryNotFound(NotFound):
    code = "delivery-not-found"
    title = "Delivery not found"


class WebhookUrlRefused(InvalidInput):
    code = "webhook-url-refused"
    title = "Webhook URL refused"
