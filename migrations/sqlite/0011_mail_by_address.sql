-- The admin's "mail status" of a user also lists a message that went to several accounts
-- sharing one address (its user_id is NULL): found by the address it went to.
CREATE INDEX outbox_shared_recipient ON outbox (recipient, id) WHERE user_id IS NULL;
