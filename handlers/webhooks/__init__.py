"""Outgoing webhooks per team (#20): endpoints and their sealed secrets, the events they subscribe to,
an outbox of deliveries filled by the notifier, and the sender that signs (Standard Webhooks) and
posts them with retries and backoff, each attempt logged (docs/notifications.md, "Webhooks")."""
