-- The provider's operator console: its own sessions, the tenant admins' support security
-- questions, and the record of callers an operator has verified.

-- A signed-in operator console. The same rules as tenant sessions, kept in a table of its
-- own so that no token of one kind can ever open the other.
CREATE TABLE operator_sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB    NOT NULL UNIQUE,
    operator_id  BIGINT  NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL
);

-- A tenant admin's support question. The answer is kept only as an argon2id hash of its
-- folded form (case, spacing and punctuation removed).
CREATE TABLE security_questions (
    user_id     BIGINT  PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    question    TEXT    NOT NULL,
    answer_hash TEXT    NOT NULL,
    set_at      BIGINT  NOT NULL
);

-- A caller whose answer matched: for a short while after `verified_at` the operator may
-- act for that admin.
CREATE TABLE caller_verifications (
    id          INTEGER PRIMARY KEY,
    operator_id BIGINT  NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    verified_at BIGINT  NOT NULL
);

CREATE INDEX caller_verifications_pair ON caller_verifications (operator_id, user_id, verified_at);

-- The provider's audit log reads every tenant's events newest first.
CREATE INDEX audit_events_at ON audit_events (at);
