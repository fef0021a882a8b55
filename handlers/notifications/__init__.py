"""Notifications (FR8.2.1, FR7.2.2, FR1.2.2): domain events from EVENTS become Slack messages,
emails and in-app banners, each delivered once per recipient (docs/notifications.md)."""
