"""Mercato for app developers: sign and send commands, verify event webhooks."""
from .client import CommandResult, MercatoClient, MercatoConnectionError, MercatoError, RateLimit
from .signing import CommandSigner, new_webhook_id, sign_command
from .webhooks import VerifiedWebhook, WebhookVerificationError, verify_webhook

__all__ = [
    "CommandResult", "CommandSigner", "MercatoClient", "MercatoConnectionError", "MercatoError", "RateLimit",
    "VerifiedWebhook", "WebhookVerificationError", "new_webhook_id", "sign_command", "verify_webhook",
]
__version__ = "0.1.0"
