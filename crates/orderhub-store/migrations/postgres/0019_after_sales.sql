-- After-sales cases (issue 21): a refund or return of lines of one order. The case is a JSON
-- document (lines, amounts as decimal strings, steps, QC); the columns are what lists filter on.
-- channel_key is set for cases the channel opened: one per channel refund per line, so a
-- repeated report finds the case instead of opening another.
CREATE TABLE after_sales (
    tenant_id    text NOT NULL,
    case_id      uuid NOT NULL,
    order_id     uuid NOT NULL,
    shop_id      text NOT NULL,
    kind         text NOT NULL,
    state        text NOT NULL,
    channel_key  text,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    doc          jsonb NOT NULL,
    PRIMARY KEY (tenant_id, case_id),
    UNIQUE (tenant_id, order_id, channel_key)
);
CREATE INDEX after_sales_by_order ON after_sales (tenant_id, order_id, case_id);
CREATE INDEX after_sales_by_state ON after_sales (tenant_id, state, case_id);
-- Returned goods that failed QC: held apart from the sellable stock (never reserved, never
-- listed), with a ledger of their own whose rows name the case.
CREATE TABLE quarantine_stock (
    tenant_id     text NOT NULL,
    sku           text NOT NULL,
    warehouse_id  text NOT NULL,
    quantity      bigint NOT NULL CHECK (quantity >= 0),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sku, warehouse_id)
);
CREATE TABLE quarantine_ledger (
    tenant_id       text NOT NULL,
    entry_id        bigserial NOT NULL,
    sku             text NOT NULL,
    warehouse_id    text NOT NULL,
    quantity        bigint NOT NULL,
    quantity_after  bigint NOT NULL CHECK (quantity_after >= 0),
    case_id         uuid NOT NULL,
    order_id        uuid NOT NULL,
    reason          text NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, entry_id)
);
CREATE INDEX quarantine_ledger_by_case ON quarantine_ledger (tenant_id, case_id, entry_id);
