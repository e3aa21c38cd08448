-- Exception workflow (issue 21): each open exception of an order (and each hold) is a work item
-- with an assignee, a due time from the tenant's SLA for its kind, and whether it was escalated;
-- notes on it are kept after it is resolved. The order document stays the truth of which
-- exceptions are open: a row whose exception the order no longer carries is closed when met.
CREATE TABLE exception_work (
    tenant_id      text NOT NULL,
    work_id        uuid NOT NULL,
    order_id       uuid NOT NULL,
    shop_id        text NOT NULL,
    kind           text NOT NULL,
    state          text NOT NULL,
    raised_at      timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    assignee       text,
    assignee_name  text,
    assigned_at    timestamptz,
    escalated_at   timestamptz,
    resolved_at    timestamptz,
    notes          bigint NOT NULL DEFAULT 0,
    version        bigint NOT NULL DEFAULT 1,
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
    tenant_id  text NOT NULL,
    work_id    uuid NOT NULL,
    note_id    uuid NOT NULL,
    at         timestamptz NOT NULL,
    key_id     text NOT NULL,
    actor      text NOT NULL,
    sealed     text NOT NULL,
    PRIMARY KEY (tenant_id, work_id, note_id)
);

-- The tenant's SLA per exception kind (JSON: {"hours": {kind: n}, "default_hours": n}); no row:
-- the defaults.
CREATE TABLE exception_sla (
    tenant_id   text PRIMARY KEY,
    sla         jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- The interventions dashboard reads what people did (not orderhub's own workers) in a window.
CREATE INDEX audit_interventions ON audit (tenant_id, at)
    WHERE key_id <> 'system';

-- Exceptions and holds open before this migration become items, due by the default SLA from when
-- they opened (exception_since, else the order's last change).
INSERT INTO exception_work (tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at)
SELECT tenant_id, gen_random_uuid(), order_id, shop_id, kind, 'open', since,
       since + make_interval(hours => CASE kind
           WHEN 'out_of_stock' THEN 24 WHEN 'not_released' THEN 2 WHEN 'no_waybill' THEN 2
           WHEN 'no_tracking' THEN 24 WHEN 'after_sale' THEN 12 WHEN 'on_hold' THEN 4
           ELSE 8 END)
FROM (
    SELECT o.tenant_id, o.order_id, o.shop_id, coalesce(o.exception_since, o.updated_at) AS since, k AS kind
    FROM orders o, unnest(string_to_array(btrim(o.exceptions), ' ')) AS k
    WHERE o.exceptions <> '' AND k <> ''
    UNION ALL
    SELECT tenant_id, order_id, shop_id, updated_at, 'on_hold' FROM orders WHERE status = 'on_hold'
) items
ON CONFLICT DO NOTHING;
