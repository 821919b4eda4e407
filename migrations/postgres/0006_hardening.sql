-- Hardening after the outside review.

-- A burst of refused sign-ins from one source (a throttled address, a locked name) is one
-- row with how many there were and when the last came, not one row each: an attacker
-- must not be able to write the audit log without limit.
ALTER TABLE audit_events ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN last_at BIGINT;
-- Finding the open burst of a kind from one address.
CREATE INDEX audit_events_burst ON audit_events (kind, client_addr, at);
