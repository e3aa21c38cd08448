-- The audit log's hash chain (issue 23): each entry's number in its tenant's chain and the SHA-256
-- of the previous entry's hash and its own content (orderhub-core `audit_chain`), written at
-- commit under the tenant's head row; the head keeps the last number and hash, and how many
-- entries were written before the chain began (left unnumbered: `chain_seq` NULL).
ALTER TABLE audit ADD COLUMN chain_seq bigint;
ALTER TABLE audit ADD COLUMN chain_hash text;
CREATE UNIQUE INDEX audit_chain ON audit (tenant_id, chain_seq);
ALTER TABLE outbox_heads ADD COLUMN audit_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE outbox_heads ADD COLUMN audit_hash text NOT NULL DEFAULT '';
ALTER TABLE outbox_heads ADD COLUMN audit_unchained bigint NOT NULL DEFAULT 0;
UPDATE outbox_heads SET audit_unchained =
    (SELECT count(*) FROM audit WHERE audit.tenant_id = outbox_heads.tenant_id);
-- From now on every entry is numbered: an insert without a number (a binary older than this
-- migration, or a hand in the database) fails loudly instead of leaving a hole in the chain.
-- NOT VALID: the entries written before stay as they are.
ALTER TABLE audit ADD CONSTRAINT audit_chained CHECK (chain_seq IS NOT NULL AND chain_seq > 0) NOT VALID;
