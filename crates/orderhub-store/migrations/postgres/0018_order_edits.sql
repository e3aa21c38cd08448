-- Order edits (issue 21): every edit of an order — applied at once, or a request waiting for
-- approval — is a row here, and together they are the order's change log. `sealed` holds what
-- was asked and each field's before/after (the receiver is personal data) encrypted with the
-- personal-data cipher; `meta` (JSON) holds the rest: reason, who asked, who approved or
-- rejected, the order's version asked against and applied at, why an approved edit failed.
CREATE TABLE order_edits (
    tenant_id   text NOT NULL,
    edit_id     uuid NOT NULL,
    order_id    uuid NOT NULL,
    shop_id     text NOT NULL,
    state       text NOT NULL,
    sealed      text NOT NULL,
    meta        jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, edit_id)
);
CREATE INDEX order_edits_by_order ON order_edits (tenant_id, order_id, edit_id);
-- One pending edit per order at a time: a second request is refused by this index if two race.
CREATE UNIQUE INDEX order_edits_one_pending ON order_edits (tenant_id, order_id)
    WHERE state = 'pending';
-- The approvers' queue reads open requests only.
CREATE INDEX order_edits_pending ON order_edits (tenant_id, edit_id) WHERE state = 'pending';

-- Which edits need approval, per tenant (JSON: address_after_payment, lines, amount_above,
-- approvals_required); no row: the defaults.
CREATE TABLE edit_rules (
    tenant_id   text PRIMARY KEY,
    rules       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);
