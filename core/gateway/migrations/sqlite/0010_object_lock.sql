-- Immutable object-storage repositories (S3 Object Lock, issue 26). Keep in step with
-- ../postgres/0010_object_lock.sql.
-- object_lock: what the bucket said of its object lock, as JSON (cloudkeep_api::ObjectLock),
-- NULL for a folder or not asked yet.
ALTER TABLE repos ADD COLUMN object_lock TEXT;
-- Until when (ms since the epoch) the store was last told to lock the object: the lock
-- keeper extends the locks that end inside the tenant's insider-protection window. NULL:
-- never locked.
ALTER TABLE packs ADD COLUMN locked_until_ms INTEGER;
ALTER TABLE objects ADD COLUMN locked_until_ms INTEGER;
ALTER TABLE points ADD COLUMN locked_until_ms INTEGER;
