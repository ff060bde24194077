-- Tamper evidence and review for the audit log.
--
-- Every event carries `hash` = SHA-256(previous event's hash ‖ the event's canonical form) and
-- names its predecessor in `prev_id` (0 for the first event). The unique index on `prev_id` is
-- what keeps the chain linear when several Steward instances write at once: two events can
-- never claim the same predecessor, so a writer that lost the race reads the new head and tries
-- again. Events recorded before this migration get their chain from Steward when it starts
-- (the same code on SQLite and PostgreSQL); until then `hash` is NULL, which is the only state
-- in which a row may be updated, and then only in its chain columns.
--
-- `environment` makes "everything about prod" an indexed filter; it is filled here for the
-- events recorded before, from their detail, their target or the backup they name.
DROP TRIGGER audit_event_no_change ON audit_event;

ALTER TABLE audit_event ADD COLUMN environment TEXT;
ALTER TABLE audit_event ADD COLUMN prev_id BIGINT;
ALTER TABLE audit_event ADD COLUMN hash TEXT;

UPDATE audit_event SET environment = detail::jsonb ->> 'environment'
 WHERE jsonb_typeof(detail::jsonb -> 'environment') = 'string';
UPDATE audit_event SET environment = target
 WHERE environment IS NULL AND action IN ('maintenance.on', 'maintenance.off', 'maintenance.enter', 'maintenance.leave');
UPDATE audit_event SET environment = (SELECT b.environment FROM backup b WHERE b.id = audit_event.target)
 WHERE environment IS NULL AND action LIKE 'backup.%';
UPDATE audit_event SET environment = split_part(target, '/', 1)
 WHERE environment IS NULL AND action LIKE 'schedule.%' AND strpos(target, '/') > 0;

CREATE UNIQUE INDEX audit_event_prev ON audit_event (prev_id);

-- The filters of the audit page, chosen from their query plans (see bench/src/audit.rs): each
-- filter walks its own index in id order, so a page of the newest 100 matches stops early.
CREATE INDEX audit_event_actor ON audit_event (actor, id);
CREATE INDEX audit_event_action ON audit_event (action text_pattern_ops, id);
CREATE INDEX audit_event_environment ON audit_event (environment, id);
CREATE INDEX audit_event_outcome ON audit_event (outcome, id);
CREATE INDEX audit_event_target ON audit_event (target, id);
-- "prod's failed restores": the environment, an action family and the outcome narrow together
-- inside the index, so only matching rows are read from the table.
CREATE INDEX audit_event_environment_action ON audit_event (environment, action text_pattern_ops, outcome, id);

CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor IS NOT DISTINCT FROM OLD.actor
       AND NEW.client_ip IS NOT DISTINCT FROM OLD.client_ip AND NEW.action = OLD.action
       AND NEW.target IS NOT DISTINCT FROM OLD.target AND NEW.outcome = OLD.outcome
       AND NEW.detail = OLD.detail AND NEW.environment IS NOT DISTINCT FROM OLD.environment THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only';
END;
$$;
CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();

-- Each walk of the chain (`steward audit verify`, and Steward itself every hour): when, how far
-- it got and what it found. The audit page shows the last one.
CREATE TABLE audit_verification (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,      -- Unix milliseconds
    checked    BIGINT NOT NULL,      -- events walked
    head_id    BIGINT,               -- the last event then (NULL: the log was empty)
    head_hash  TEXT,
    ok         BIGINT NOT NULL,      -- 1 the chain holds, 0 it does not
    problem    TEXT,                 -- the first problem, naming the event
    by_whom    TEXT   NOT NULL       -- 'steward' (hourly), 'cli', or a username
);
