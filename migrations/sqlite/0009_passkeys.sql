-- Passkeys (WebAuthn): the credentials a user added in Settings, and the one ceremony of
-- each kind a user may have in flight.

-- A passkey. `credential_id` (base64url) is the authenticator's id for it, unique across
-- every account: one authenticator credential belongs to one user (WebAuthn §7.1,
-- step 22). `passkey` is the verified credential as JSON — public key, signature counter,
-- flags; nothing secret. `user_handle` is the random WebAuthn user id the authenticator
-- was given (the same for all of one user's passkeys), never the username.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT    NOT NULL UNIQUE,
    user_handle   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    passkey       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    -- Shown on the Passkeys page; set by each sign-in with it.
    last_used_at  BIGINT
);

-- The Passkeys page lists a user's own.
CREATE INDEX passkeys_user ON passkeys (user_id);

-- The server half of a ceremony between its two requests (the challenge and what the
-- browser answered with it): kept here, never in a cookie, so an old one cannot be replayed.
-- One per user and kind (`register` or `authenticate`): a new start replaces it, finishing
-- deletes it, and it stops counting at `expires_at` (on the injected clock).
CREATE TABLE passkey_ceremonies (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);
