-- Real shipments (issue 19): what a waybill declares comes from master data, and carriers are
-- configured per tenant with their own credentials.
-- A SKU's unit weight in kilograms, as decimal text (NULL: not known).
ALTER TABLE skus ADD COLUMN weight_kg TEXT;
-- A warehouse's sender on waybills: the whole address as JSON, encrypted by the application
-- (contact, phone and street are personal-ish data). NULL: not given.
ALTER TABLE warehouses ADD COLUMN sender TEXT;
-- The heaviest parcel the warehouse packs, in kilograms, as decimal text (NULL: one parcel).
ALTER TABLE warehouses ADD COLUMN parcel_max_kg TEXT;
-- A tenant's account with a carrier: where its open platform answers and the credentials the
-- adapter signs with. secret, access_token and customer_password are encrypted by the
-- application; version grows by one with every change.
CREATE TABLE carrier_accounts (
    tenant_id          TEXT NOT NULL,
    carrier            TEXT NOT NULL,
    base_url           TEXT NOT NULL,
    app_key            TEXT NOT NULL,
    secret             TEXT NOT NULL,
    customer_code      TEXT NOT NULL,
    access_token       TEXT,
    customer_password  TEXT,
    enabled            INTEGER NOT NULL,
    priority           INTEGER NOT NULL,
    track_per_minute   INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, carrier)
) WITHOUT ROWID;
