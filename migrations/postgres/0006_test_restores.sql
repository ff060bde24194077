-- Test restores: each time a `verify` job restored a backup into scratch (a temporary tree or
-- file, a scratch database) and checked it. The newest row of a backup is its badge; the rows
-- are its history. They go with the backup when it is removed from the catalog.
CREATE TABLE test_restore (
    id          BIGSERIAL PRIMARY KEY,
    backup_id   TEXT    NOT NULL REFERENCES backup (id) ON DELETE CASCADE,
    job_id      BIGINT  REFERENCES job (id),        -- the verify job that ran it
    at          BIGINT  NOT NULL,                   -- Unix milliseconds: when it ended
    ok          BIGINT  NOT NULL,                   -- 1 every resource passed (or was skipped with a reason), 0 failed
    checked     TEXT    NOT NULL DEFAULT '',        -- what was checked, in words, per resource
    error       TEXT                                -- why it failed, in the tools' own words
);
CREATE INDEX test_restore_backup ON test_restore (backup_id, id);
