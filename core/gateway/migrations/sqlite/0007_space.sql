-- Space reclamation (issue 21). Keep in step with ../postgres/0007_space.sql.
--
-- retired_ms: a pack or index file the tenant's compaction dropped while insider protection
-- was on: hidden from the tenant (its chunks count as absent), kept by the SP until the
-- protection window ends, then removed for good after one more check that no restore point
-- needs it. A retired pack's bytes move to the recycle bin.
ALTER TABLE packs ADD COLUMN retired_ms INTEGER;
ALTER TABLE objects ADD COLUMN retired_ms INTEGER;

-- What the gateway's last space pass found reclaimable in the quota (bytes of packs holding
-- chunks no restore point, live or in the recycle bin, references), and when.
ALTER TABLE quotas ADD COLUMN reclaimable_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quotas ADD COLUMN space_checked_ms INTEGER;

-- The stored length of each chunk of a pack (4 bytes little-endian each, in the order of
-- its sorted chunk ids), as the client declared them: what a compaction would free is then
-- measured in bytes, not guessed from counts. NULL for packs of older clients.
ALTER TABLE packs ADD COLUMN chunk_lens BLOB;
