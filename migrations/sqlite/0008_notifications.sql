-- Notifications: an outbox written in the same transaction as what caused each one, a
-- delivery per (notification, target) that a sender claims with a lease, every attempt, and
-- the conditions that decide when something is news (the flap window, recoveries).

CREATE TABLE notification (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     BIGINT  NOT NULL,         -- Unix milliseconds
    kind           TEXT    NOT NULL,         -- backup_failed, restore_failed, recovered, test …
    condition_key  TEXT,                     -- backup:prod — what a recovery ends
    environment    TEXT,
    severity       TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    recovery       BIGINT  NOT NULL DEFAULT 0,
    summary        TEXT    NOT NULL,
    detail         TEXT,                     -- the tool's own words
    link           TEXT    NOT NULL,         -- the console path that explains it, e.g. /jobs/12
    job_id         BIGINT
);
CREATE INDEX notification_environment ON notification (environment, id);

-- One per target the rules chose when the notification was written. A sender claims a due
-- delivery by setting its lease; only the lease holder records the outcome.
CREATE TABLE notification_delivery (
    notification_id  BIGINT NOT NULL REFERENCES notification (id),
    target           TEXT   NOT NULL,
    state            TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    finished_at      BIGINT,
    PRIMARY KEY (notification_id, target)
);
CREATE INDEX notification_delivery_due ON notification_delivery (next_attempt_at) WHERE state = 'pending';

CREATE TABLE notification_attempt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  BIGINT NOT NULL REFERENCES notification (id),
    target           TEXT   NOT NULL,
    at               BIGINT NOT NULL,
    instance         TEXT   NOT NULL,
    ok               BIGINT NOT NULL,
    error            TEXT,
    duration_ms      BIGINT NOT NULL
);
CREATE INDEX notification_attempt_delivery ON notification_attempt (notification_id, target);

-- What is wrong right now, one row per condition ever seen (backup:prod, restore:prod,
-- test_restore:prod, maintenance:prod, job:prod:command, user:alice).
CREATE TABLE alert_condition (
    key               TEXT   PRIMARY KEY,
    firing            BIGINT NOT NULL DEFAULT 0,
    since             BIGINT NOT NULL,        -- when the current (or last) episode began
    occurrences       BIGINT NOT NULL DEFAULT 0,  -- problems in this episode
    first_kind        TEXT,                   -- the episode's first problem
    notified_at       BIGINT,                 -- the last problem notification
    episode_notified  BIGINT NOT NULL DEFAULT 0,  -- 1: this episode was notified, so its end will be
    comebacks         BIGINT NOT NULL DEFAULT 0   -- episodes begun but not notified (flapping)
);
