-- Chunk ids as 32-byte values pointing at an integer pack key: a quarter of the bytes per
-- chunk that hex text ids with a text pack column took, so registering a pack's chunks writes
-- far fewer pages. Packs get an integer key. Keep in step with ../sqlite/0004_chunk_ids.sql.

ALTER TABLE packs ADD COLUMN pk BIGSERIAL UNIQUE;

CREATE TABLE chunk_ids (
    quota_id BIGINT NOT NULL,
    id BYTEA NOT NULL,
    pack BIGINT NOT NULL REFERENCES packs (pk) ON DELETE CASCADE,
    PRIMARY KEY (quota_id, id, pack)
);

INSERT INTO chunk_ids (quota_id, id, pack)
    SELECT c.quota_id, decode(c.id, 'hex'), p.pk
    FROM chunks c JOIN packs p ON p.quota_id = c.quota_id AND p.id = c.pack;

CREATE INDEX chunk_ids_by_pack ON chunk_ids (pack);

DROP TABLE chunks;
