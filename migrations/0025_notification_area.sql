-- The notification area (issue #23, web/notification_area.py): a person's recent notifications, read
-- or not, newest first, in the header's list on every page. A notification superseded by a later one
-- about the same job leaves the list (the team's are listed by notification_banners_team_open_idx).
CREATE INDEX notification_banners_user_recent_idx ON notification_banners (user_name, created_at DESC)
    WHERE user_name IS NOT NULL AND superseded_by IS NULL;
