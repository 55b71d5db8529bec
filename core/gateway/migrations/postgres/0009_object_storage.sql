-- Object-storage cloud repositories and managed repositories (issue 26). Keep in step with
-- ../sqlite/0009_object_storage.sql.
-- s3: the object store as JSON (endpoint, bucket, prefix, region), NULL for a folder.
-- secret: its credentials sealed (XChaCha20-Poly1305, hex) under the secrets key of the
-- gateways' configuration; the database alone never reveals them.
ALTER TABLE repos ADD COLUMN s3 TEXT;
ALTER TABLE repos ADD COLUMN secret TEXT;
-- What SP operators read instead of the name; the name stays the stable key.
ALTER TABLE repos ADD COLUMN title TEXT NOT NULL DEFAULT '';
-- 0: out of service (no new tenant quotas on it).
ALTER TABLE repos ADD COLUMN in_service BIGINT NOT NULL DEFAULT 1;
-- Most bytes of quota the repository may hand out in all, -1 for no limit.
ALTER TABLE repos ADD COLUMN capacity BIGINT NOT NULL DEFAULT -1;
