"""Webhook notifications: standing matches found when resources change, signed deliveries with retries."""
