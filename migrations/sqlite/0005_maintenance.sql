-- Environments in maintenance mode: one row while an environment is in it.
CREATE TABLE maintenance (
    environment  TEXT   PRIMARY KEY,
    since        BIGINT NOT NULL,            -- Unix milliseconds
    entered_by   TEXT   NOT NULL,
    reason       TEXT   NOT NULL DEFAULT '',
    -- What the `enter` hook reported (JSON), handed to `leave` so it restores exactly what
    -- was running.
    hook_state   TEXT   NOT NULL DEFAULT 'null',
    job_id       BIGINT REFERENCES job (id)   -- the job that entered it (a restore), if any
);
