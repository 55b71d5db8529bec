-- What this computer knows of a provider's certificate beyond its pin (JSON): the next one
-- the provider announced (signed by the pinned one), when the served one expires, and the
-- last change of the pin accepted without asking (an announced rollover, a CA-signed
-- renewal), for Home and the session logs.
ALTER TABLE providers ADD COLUMN cert TEXT NOT NULL DEFAULT '{}';
