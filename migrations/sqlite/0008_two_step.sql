-- Two-step sign-in: an authenticator app (TOTP) per account, its recovery codes, the
-- sign-ins waiting for their second step, and a tenant's rule on who must have one.
-- A factor belongs to a tenant user or to an operator, never both (the CHECKs), so one
-- set of tables serves both sign-ins.

-- The authenticator app of an account. `secret` is sealed under the data key (like SIP
-- secrets: the server needs it in clear to compute codes), bound to its owner.
-- `confirmed_at` stays NULL until a first code proved the app was set up; only then does
-- it count. `last_step` is the newest 30-second step whose code was accepted: a code of
-- that step or an older one is refused, so a code works once (no replay in its window).
CREATE TABLE totp_factors (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT  UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    operator_id  BIGINT  UNIQUE REFERENCES operators(id) ON DELETE CASCADE,
    secret       BLOB    NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    CHECK ((user_id IS NULL) <> (operator_id IS NULL))
);

-- Single-use recovery codes, shown once. Only a SHA-256 of each (80 random bits, bound to
-- its owner) is kept; `used_at` marks one spent. Regenerating deletes the old set.
CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT  REFERENCES users(id) ON DELETE CASCADE,
    operator_id BIGINT  REFERENCES operators(id) ON DELETE CASCADE,
    code_hash   BLOB    NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT  NOT NULL,
    CHECK ((user_id IS NULL) <> (operator_id IS NULL))
);

-- Using a code looks it up by owner.
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
CREATE INDEX recovery_codes_operator ON recovery_codes (operator_id);

-- A sign-in whose password was right and whose second step (or, where the rules demand
-- one, the setting up of a second factor: `enrol`) is not done yet. No session exists
-- meanwhile. Only the SHA-256 of the browser's token is kept; `password_stamp` is a hash
-- of the password hash checked, so a password changed meanwhile voids the step.
CREATE TABLE sign_in_pending (
    id             INTEGER PRIMARY KEY,
    token_hash     BLOB    NOT NULL UNIQUE,
    user_id        BIGINT  REFERENCES users(id) ON DELETE CASCADE,
    operator_id    BIGINT  REFERENCES operators(id) ON DELETE CASCADE,
    purpose        TEXT    NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    password_stamp BLOB    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    CHECK ((user_id IS NULL) <> (operator_id IS NULL))
);

-- Sweeping expired steps.
CREATE INDEX sign_in_pending_expires ON sign_in_pending (expires_at);

-- Who of a tenant must have a second factor: nobody beyond the choice of each user
-- ('off'), its admins, or everyone. Set by a tenant admin.
ALTER TABLE tenants ADD COLUMN two_step_required TEXT NOT NULL DEFAULT 'off'
    CHECK (two_step_required IN ('off', 'admins', 'everyone'));
