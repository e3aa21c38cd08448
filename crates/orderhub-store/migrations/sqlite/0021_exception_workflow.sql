-- Exception workflow (issue 21): each open exception of an order (and each hold) is a work item
-- with an assignee, a due time from the tenant's SLA for its kind, and whether it was escalated;
-- notes on it are kept after it is resolved. The order document stays the truth of which
-- exceptions are open: a row whose exception the order no longer carries is closed when met.
CREATE TABLE exception_work (
    tenant_id      TEXT NOT NULL,
    work_id        TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    shop_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    raised_at      INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    assignee       TEXT,
    assignee_name  TEXT,
    assigned_at    INTEGER,
    escalated_at   INTEGER,
    resolved_at    INTEGER,
    notes          INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, work_id)
);
-- One open item per (order, kind): a second raise of an open one is the same item.
CREATE UNIQUE INDEX exception_work_open ON exception_work (tenant_id, order_id, kind)
    WHERE state = 'open';
CREATE INDEX exception_work_by_order ON exception_work (tenant_id, order_id, work_id);
-- The board sorted by due time, and the escalation pass: open items only.
CREATE INDEX exception_work_due ON exception_work (tenant_id, due_at, work_id) WHERE state = 'open';
CREATE INDEX exception_work_to_escalate ON exception_work (due_at)
    WHERE state = 'open' AND escalated_at IS NULL;
CREATE INDEX exception_work_by_assignee ON exception_work (tenant_id, assignee, due_at)
    WHERE state = 'open';

-- Notes on a work item: who, when, and the text sealed with the personal-data cipher (people
-- write phone numbers into notes).
CREATE TABLE exception_notes (
    tenant_id  TEXT NOT NULL,
    work_id    TEXT NOT NULL,
    note_id    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, work_id, note_id)
);

-- The tenant's SLA per exception kind (JSON: {"hours": {kind: n}, "default_hours": n}); no row:
-- the defaults.
CREATE TABLE exception_sla (
    tenant_id   TEXT PRIMARY KEY,
    sla         TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The interventions dashboard reads what people did (not orderhub's own workers) in a window.
CREATE INDEX audit_interventions ON audit (tenant_id, at)
    WHERE key_id <> 'system';

-- Exceptions and holds open before this migration become items, due by the default SLA from when
-- they opened (exception_since, else the order's last change).
WITH RECURSIVE split(tenant_id, order_id, shop_id, since, rest, kind) AS (
    SELECT tenant_id, order_id, shop_id, coalesce(exception_since, updated_at),
           ltrim(exceptions), NULL
    FROM orders WHERE exceptions <> ''
    UNION ALL
    SELECT tenant_id, order_id, shop_id, since, ltrim(substr(rest, instr(rest, ' ') + 1)),
           substr(rest, 1, instr(rest, ' ') - 1)
    FROM split WHERE instr(rest, ' ') > 0
),
open_items(tenant_id, order_id, shop_id, since, kind) AS (
    SELECT tenant_id, order_id, shop_id, since, kind FROM split WHERE kind IS NOT NULL AND kind <> ''
    UNION ALL
    SELECT tenant_id, order_id, shop_id, updated_at, 'on_hold' FROM orders WHERE status = 'on_hold'
)
INSERT OR IGNORE INTO exception_work (tenant_id, work_id, order_id, shop_id, kind, state,
    raised_at, due_at)
SELECT tenant_id,
       -- A UUID written as the store writes them (hyphenated), so the item is found by its id.
       lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-' || hex(randomblob(2)) || '-' ||
             hex(randomblob(2)) || '-' || hex(randomblob(6))),
       order_id, shop_id, kind, 'open', since,
       since + 3600000000 * (CASE kind
           WHEN 'out_of_stock' THEN 24 WHEN 'not_released' THEN 2 WHEN 'no_waybill' THEN 2
           WHEN 'no_tracking' THEN 24 WHEN 'after_sale' THEN 12 WHEN 'on_hold' THEN 4
           ELSE 8 END)
FROM open_items;
