-- Rule sets (issue 22): each version of a tenant's rules is a row, never rewritten once drafted
-- (a change is a new draft); only its state, meta (who wrote, submitted, approved, published it)
-- and effective time move. The live set is the published one with the latest effective time that
-- has passed, read by every node from here.
CREATE TABLE rule_sets (
    tenant_id     TEXT NOT NULL,
    rule_set_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    state         TEXT NOT NULL,
    rules         TEXT NOT NULL,
    meta          TEXT NOT NULL,
    effective_at  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rule_set_id)
);
-- Versions count 1, 2, 3 … per tenant; two drafts racing for one number: the second is refused.
CREATE UNIQUE INDEX rule_sets_version ON rule_sets (tenant_id, version);
-- Every create reads the live set: published sets by effective time.
CREATE INDEX rule_sets_live ON rule_sets (tenant_id, effective_at, version)
    WHERE state = 'published';
