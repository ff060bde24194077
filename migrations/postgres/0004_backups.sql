-- The backup catalog: one row per complete backup, rebuilt from the manifests in storage by
-- `steward backup reindex`, so that losing the database does not lose the backups.
CREATE TABLE backup (
    id             TEXT    PRIMARY KEY,             -- e.g. prod-20261121-0102-7f3a
    environment    TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,                -- Unix milliseconds: when it started
    finished_at    BIGINT  NOT NULL,
    trigger_type   TEXT    NOT NULL CHECK (trigger_type IN ('manual', 'scheduled', 'pre-restore')),
    requested_by   TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    total_size     BIGINT  NOT NULL,                -- bytes, all artifacts
    resources      TEXT    NOT NULL DEFAULT '[]',   -- JSON array of resource names
    pinned         BIGINT  NOT NULL DEFAULT 0,      -- 1: never deleted by retention
    verified_at    BIGINT,                          -- last checksum verification
    verify_ok      BIGINT,                          -- 1 passed, 0 failed, NULL never verified
    verify_error   TEXT,
    job_id         BIGINT  REFERENCES job (id),     -- the job that took it (none after a reindex)
    manifest       TEXT    NOT NULL                 -- the manifest as stored beside the artifacts
);
CREATE INDEX backup_environment_created ON backup (environment, created_at);
