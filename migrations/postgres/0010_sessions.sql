-- "Your sessions" (Settings): each session remembers where it was opened, so its owner can
-- tell their own browsers from someone else's and end the one they do not recognise.

-- A few words about the browser ("Firefox on Linux"), made from the User-Agent at sign-in.
-- The header itself is not kept: it would be a fingerprint, and the words are all a person
-- needs. NULL for sessions opened before this column existed.
ALTER TABLE sessions ADD COLUMN device TEXT;

-- The client address at sign-in (the balancer's X-Forwarded-For client when trusted), as
-- the audit log records it.
ALTER TABLE sessions ADD COLUMN client_addr TEXT;
