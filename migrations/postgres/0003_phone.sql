-- Phone credentials. The PBX needs SIP secrets and voicemail PINs in clear, so they are
-- sealed (AEAD, tenant and extension as associated data) under the data key, never hashed.

-- The SIP secret phones register with; NULL only for users created before this migration
-- (one is generated the first time their Phone tab is shown).
ALTER TABLE users ADD COLUMN sip_secret BYTEA;
-- The voicemail PIN; NULL until the user or an admin sets one.
ALTER TABLE users ADD COLUMN voicemail_pin BYTEA;

-- A known value sealed under each data key in use, so a missing or wrong key file stops
-- start-up instead of failing on the first secret (or silently making new ones).
CREATE TABLE key_checks (
    key_id  BIGINT PRIMARY KEY,
    sealed  BYTEA   NOT NULL
);
