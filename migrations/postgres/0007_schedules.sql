-- Schedules (each fire time runs once, whatever the number of instances) and pins.

-- The slot a scheduled job was requested for (`prod/nightly/1764554400000`): the database
-- refuses a second job for the same slot, so two instances never both run it.
ALTER TABLE job ADD COLUMN slot_key TEXT;
CREATE UNIQUE INDEX job_slot_key ON job (slot_key) WHERE slot_key IS NOT NULL;

-- One row per configured schedule, created when an instance first sees it.
CREATE TABLE schedule_state (
    environment   TEXT   NOT NULL,
    schedule      TEXT   NOT NULL,
    -- Fire times at or before this are not run: when the schedule was first seen or resumed
    -- (a paused schedule does not catch up on what it skipped).
    since         BIGINT NOT NULL,
    paused_at     BIGINT,
    paused_by     TEXT,
    pause_reason  TEXT,
    PRIMARY KEY (environment, schedule)
);

-- One row per fire time that was acted on: claimed by the first instance to insert it.
CREATE TABLE schedule_slot (
    environment   TEXT   NOT NULL,
    schedule      TEXT   NOT NULL,
    fire_at       BIGINT NOT NULL,           -- Unix milliseconds: the slot's time
    state         TEXT   NOT NULL CHECK (state IN ('due', 'waiting', 'started', 'skipped', 'failed')),
    -- Earlier fire times that passed while no instance was running: not run, recorded.
    missed        BIGINT NOT NULL DEFAULT 0,
    missed_first  BIGINT,
    claimed_by    TEXT   NOT NULL,           -- the instance that claimed it
    claimed_at    BIGINT NOT NULL,
    started_at    BIGINT,
    job_id        BIGINT REFERENCES job (id),
    blocked_by    BIGINT REFERENCES job (id),  -- the job that held the environment
    note          TEXT,                      -- why it was skipped or failed
    -- 1 once what follows the job was done (a prune after a scheduled backup) or not needed.
    followed_up   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, schedule, fire_at)
);
CREATE INDEX schedule_slot_open ON schedule_slot (state) WHERE state IN ('due', 'waiting');

-- Who pinned a backup, when and why (retention never removes a pinned backup).
ALTER TABLE backup ADD COLUMN pinned_by TEXT;
ALTER TABLE backup ADD COLUMN pinned_at BIGINT;
ALTER TABLE backup ADD COLUMN pin_reason TEXT;
