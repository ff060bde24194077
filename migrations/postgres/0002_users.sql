-- People who may sign in. "users", not "user": the latter is reserved in PostgreSQL.
CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    username            TEXT   NOT NULL UNIQUE,
    password_hash       TEXT   NOT NULL,              -- Argon2id PHC string
    role                TEXT   NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled            BIGINT NOT NULL DEFAULT 0,    -- 0/1
    created_at          BIGINT NOT NULL,              -- Unix milliseconds
    last_login_at       BIGINT,
    password_changed_at BIGINT NOT NULL
);

-- Failed sign-ins, by the username typed (known or not) and the client address: the lockout
-- and the per-address limit count rows here. Lifting a lock deletes a username's rows.
CREATE TABLE login_failure (
    id         BIGSERIAL PRIMARY KEY,
    username   TEXT   NOT NULL,
    client_ip  TEXT   NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX login_failure_username_at ON login_failure (username, at);
CREATE INDEX login_failure_ip_at ON login_failure (client_ip, at);
