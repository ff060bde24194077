-- The audit log: who did what, from where, when, why, with what outcome.
-- Append-only: the triggers below refuse to change or remove a row, whoever asks.
CREATE TABLE audit_event (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT  NOT NULL,            -- Unix milliseconds
    actor      TEXT,                        -- username; NULL for Steward itself or an anonymous client
    client_ip  TEXT,
    action     TEXT    NOT NULL,            -- e.g. login, user.create, job.request
    target     TEXT,                        -- what the action was about, e.g. a username or job id
    outcome    TEXT    NOT NULL,            -- ok, refused, failed
    detail     TEXT    NOT NULL DEFAULT '{}' -- JSON object with action-specific facts
);
CREATE INDEX audit_event_at ON audit_event (at);

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
