-- The portal's core: tenants, their users, the provider's operators, sessions,
-- sign-in throttling and the audit log. Times are Unix seconds (BIGINT) so both
-- databases compare them the same way and the injected clock is the only "now".

-- A customer company. `code` is the tenant code / Client ID users type after the hyphen,
-- stored lowercase so the unique index makes it case-insensitive.
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    sip_domain  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- One portal login bound to one extension of one tenant.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    tenant_id           BIGINT  NOT NULL REFERENCES tenants(id),
    extension           TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    email               TEXT,
    role                TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    -- argon2id PHC string; never the password.
    password_hash       TEXT    NOT NULL,
    -- 1 while the password is a temporary one that may only be used to choose a new one.
    password_temporary  BIGINT  NOT NULL DEFAULT 0,
    -- When a temporary password stops working (NULL for a chosen password).
    password_expires_at BIGINT,
    password_changed_at BIGINT  NOT NULL,
    last_sign_in_at     BIGINT,
    created_at          BIGINT  NOT NULL,
    -- The username is extension + tenant code, so an extension is unique within a tenant.
    UNIQUE (tenant_id, extension)
);

-- "Which users share this email" is asked by password recovery.
CREATE INDEX users_email ON users (email);

-- The provider's support staff; they have no tenant.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

-- A signed-in browser. Only the SHA-256 of the cookie's token is kept, so a copy of the
-- database cannot be replayed as a cookie.
CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY,
    token_hash       BLOB    NOT NULL UNIQUE,
    user_id          BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at       BIGINT  NOT NULL,
    -- The sliding idle timer; written at most once a minute per session.
    last_seen_at     BIGINT  NOT NULL,
    -- When the password was last proven in this session (sensitive actions ask again).
    authenticated_at BIGINT  NOT NULL
);

-- "End every session of this user" must not scan the table.
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-in counting, one row per key ("user:201-acme", "addr:192.0.2.7").
-- `attempts` is raised atomically *before* a password is checked, so concurrent guesses
-- can never check more passwords than the limit allows.
CREATE TABLE signin_throttle (
    key          TEXT   PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts     BIGINT NOT NULL,
    locked_until BIGINT
);

-- Security events. Names are copied as text, not referenced, so history survives deletes.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    tenant_id   BIGINT  REFERENCES tenants(id),
    kind        TEXT    NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_addr TEXT,
    detail      TEXT
);

-- The tenant admin's audit page lists a tenant's events newest first.
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at);
