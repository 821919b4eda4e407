-- The phone system's link to Dialtone: the tokens a SIP server presents on the internal
-- listener, the queue of things the SIP server must forget, and one SIP domain per tenant.

-- A SIP server's credential for the internal routes. Only the SHA-256 of the token is
-- kept, so a copy of the database cannot be replayed against the credential lookup.
CREATE TABLE pbx_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    token_hash  BLOB   NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

-- What Kamailio must forget (its cached HA1 and the registrations of an address of record,
-- `EXT@DOMAIN`) because a SIP secret changed or stopped being valid. Written after the
-- change commits and delivered by a worker with retries, so a Kamailio that is down when a
-- secret changes still hears of it when it comes back.
CREATE TABLE pbx_notifications (
    id              INTEGER PRIMARY KEY,
    aor             TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    -- When the worker may try next; a worker that takes a row moves this forward first,
    -- so two nodes do not send the same notice at once.
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT
);

-- The worker asks "what is due" by time.
CREATE INDEX pbx_notifications_due ON pbx_notifications (next_attempt_at);

-- Phones register to a tenant's SIP domain, and the credential lookup finds the tenant by
-- it: two tenants must never share one, whatever its case. (Domains have been stored
-- lowercase since tenants existed, so existing rows already satisfy this.)
CREATE UNIQUE INDEX tenants_sip_domain_ci ON tenants (lower(sip_domain));
