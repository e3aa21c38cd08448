-- Pushes refused before they were authenticated (bad or missing signature, undecryptable) are
-- kept without their body, and at most a cap of them per shop: this counts them per (tenant,
-- channel, shop). `kept`: records written; `dropped`: refused pushes beyond the cap, counted only.
-- `last_kept`: whether the last refused push was written (read back by the write that counted it).
CREATE TABLE channel_refusals (
    tenant_id   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    shop_id     TEXT NOT NULL,
    kept        INTEGER NOT NULL,
    dropped     INTEGER NOT NULL,
    last_kept   INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel, shop_id)
) WITHOUT ROWID
