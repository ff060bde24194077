-- The job queue: every action Steward performs (command, backup, restore, cleanup, …).
CREATE TABLE job (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT    NOT NULL,             -- command, …
    environment         TEXT    NOT NULL,
    input               TEXT    NOT NULL DEFAULT '{}', -- JSON, typed by kind
    -- The environment, for jobs that change it; NULL for read-only jobs. At most one queued or
    -- running job per key (index below): the database itself refuses a second one.
    exclusive_key       TEXT,
    state               TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    requested_by        TEXT    NOT NULL,
    reason              TEXT    NOT NULL DEFAULT '',
    created_at          BIGINT  NOT NULL,             -- Unix milliseconds
    started_at          BIGINT,
    finished_at         BIGINT,
    attempt             BIGINT  NOT NULL DEFAULT 1,
    parent_id           BIGINT  REFERENCES job (id),  -- the job that started this one
    retry_of            BIGINT  REFERENCES job (id),  -- the failed or interrupted job this retries
    steps               TEXT    NOT NULL DEFAULT '[]', -- JSON array of step labels
    step_index          BIGINT  NOT NULL DEFAULT 0,   -- steps done
    bytes_done          BIGINT,
    bytes_total         BIGINT,
    error               TEXT,                         -- one-line summary when not succeeded
    lease_owner         TEXT,                         -- the worker running it
    lease_until         BIGINT,
    cancel_requested_by TEXT,
    acknowledged_by     TEXT,                         -- who dismissed an interrupted job's banner
    acknowledged_at     BIGINT
);
CREATE UNIQUE INDEX job_exclusive ON job (exclusive_key)
    WHERE exclusive_key IS NOT NULL AND state IN ('queued', 'running');
-- A job is retried at most once; a failed retry is retried in its turn.
CREATE UNIQUE INDEX job_retried_once ON job (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX job_state ON job (state, id);
CREATE INDEX job_environment ON job (environment, id);

-- A job's log, line by line, in order.
CREATE TABLE job_log (
    job_id  BIGINT NOT NULL REFERENCES job (id),
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    level   TEXT   NOT NULL,                          -- info, warn, error (Steward), stdout, stderr (the program)
    line    TEXT   NOT NULL,
    PRIMARY KEY (job_id, seq)
);
