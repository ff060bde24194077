-- Who is using the backup repository: backups, restores and verifications (several at once,
-- from any instance); a prune, which deletes and repacks packs, needs it alone. A row of a job that is no longer
-- running is stale (its Steward crashed) and ignored.
CREATE TABLE repository_use (
    job_id  BIGINT  PRIMARY KEY,
    mode    TEXT    NOT NULL CHECK (mode IN ('use', 'prune')),
    since   BIGINT  NOT NULL
);
