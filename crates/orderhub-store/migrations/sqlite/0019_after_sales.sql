-- After-sales cases (issue 21): a refund or return of lines of one order. The case is a JSON
-- document (lines, amounts as decimal strings, steps, QC); the columns are what lists filter on.
-- channel_key is set for cases the channel opened: one per channel refund per line, so a
-- repeated report finds the case instead of opening another.
CREATE TABLE after_sales (
    tenant_id    TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    shop_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    channel_key  TEXT,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, case_id),
    UNIQUE (tenant_id, order_id, channel_key)
) WITHOUT ROWID;
CREATE INDEX after_sales_by_order ON after_sales (tenant_id, order_id, case_id);
CREATE INDEX after_sales_by_state ON after_sales (tenant_id, state, case_id);
-- Returned goods that failed QC: held apart from the sellable stock (never reserved, never
-- listed), with a ledger of their own whose rows name the case.
CREATE TABLE quarantine_stock (
    tenant_id     TEXT NOT NULL,
    sku           TEXT NOT NULL,
    warehouse_id  TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity >= 0),
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sku, warehouse_id)
) WITHOUT ROWID;
CREATE TABLE quarantine_ledger (
    entry_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    sku             TEXT NOT NULL,
    warehouse_id    TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    quantity_after  INTEGER NOT NULL CHECK (quantity_after >= 0),
    case_id         TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX quarantine_ledger_by_case ON quarantine_ledger (tenant_id, case_id, entry_id);
