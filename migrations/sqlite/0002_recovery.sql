-- Password recovery by email and the mail outbox.

-- A reset link. Only the SHA-256 of its token is kept. `used_at` is set by the one submit
-- that succeeds (an UPDATE … WHERE used_at IS NULL), so a link works exactly once.
CREATE TABLE reset_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  BLOB    NOT NULL UNIQUE,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);

-- "At most 3 reset mails per account per 15 minutes" counts a user's recent links.
CREATE INDEX reset_tokens_user_created ON reset_tokens (user_id, created_at);

-- Mail not yet sent, and the delivery record of mail that was. Written in the same
-- transaction as the change that causes it; a worker delivers it.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    -- Whom it concerns, for the admin's "mail status" view; the record goes with the user.
    user_id         BIGINT  REFERENCES users(id) ON DELETE CASCADE,
    tenant_id       BIGINT  REFERENCES tenants(id),
    subject         TEXT    NOT NULL,
    -- Bodies sealed with the server key (they may hold a reset link); NULL once sent.
    body_text       BLOB,
    body_html       BLOB,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    queued_at       BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    -- A worker's lease on the message: another node skips it until the lease runs out,
    -- and only the holder of `claim_token` may record the outcome.
    claimed_until   BIGINT,
    claim_token     TEXT,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);

-- The worker's query: due, queued messages in order.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
-- The admin's per-user mail status.
CREATE INDEX outbox_user ON outbox (user_id, id);
