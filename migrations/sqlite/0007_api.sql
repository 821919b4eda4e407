-- The JSON API: the bearer tokens the provider's billing system and tenants' own tools
-- present, the replay store behind `Idempotency-Key`, and the suspension of a tenant.

-- A suspended tenant keeps everything, but its users cannot sign in, its sessions end and
-- the SIP credential lookup answers 403. NULL while the tenant is in service.
ALTER TABLE tenants ADD COLUMN suspended_at BIGINT;

-- An API token. Only the SHA-256 of the token is kept, so a copy of the database cannot be
-- replayed against the API. `tenant_id` NULL is a provider token (every tenant); otherwise
-- the token reaches that tenant only and goes with it.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    tenant_id    BIGINT  REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    -- Shown on the admin's token list; written at most once a minute per token.
    last_used_at BIGINT
);

-- A name is unique among the provider's tokens and among each tenant's (it is the `api:NAME`
-- of the audit log and what `revoke NAME` takes).
CREATE UNIQUE INDEX api_tokens_scope_name ON api_tokens (COALESCE(tenant_id, 0), name);

-- The first answer to a creating POST that carried an `Idempotency-Key`, kept 24 hours so a
-- retry gets the same answer. The body may hold a temporary password, so it is sealed with
-- the data key; `request_hash` tells a retry from another request under the same key.
CREATE TABLE api_idempotency (
    id           INTEGER PRIMARY KEY,
    token_id     BIGINT  NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    idem_key     TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    status       BIGINT  NOT NULL,
    body         BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (token_id, idem_key)
);

-- Expired answers are purged by age.
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
