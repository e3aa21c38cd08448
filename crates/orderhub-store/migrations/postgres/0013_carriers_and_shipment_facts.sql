-- Real shipments (issue 19): what a waybill declares comes from master data, and carriers are
-- configured per tenant with their own credentials.
-- A SKU's unit weight in kilograms (NULL: not known).
ALTER TABLE skus ADD COLUMN weight_kg numeric(10, 3);
-- A warehouse's sender on waybills: the whole address as JSON, encrypted by the application
-- (contact, phone and street are personal-ish data). NULL: not given.
ALTER TABLE warehouses ADD COLUMN sender text;
-- The heaviest parcel the warehouse packs, in kilograms (NULL: one parcel per order).
ALTER TABLE warehouses ADD COLUMN parcel_max_kg numeric(10, 3);
-- A tenant's account with a carrier: where its open platform answers and the credentials the
-- adapter signs with. secret, access_token and customer_password are encrypted by the
-- application; version grows by one with every change.
CREATE TABLE carrier_accounts (
    tenant_id          text NOT NULL,
    carrier            text NOT NULL,
    base_url           text NOT NULL,
    app_key            text NOT NULL,
    secret             text NOT NULL,
    customer_code      text NOT NULL,
    access_token       text,
    customer_password  text,
    enabled            boolean NOT NULL,
    priority           integer NOT NULL,
    track_per_minute   integer NOT NULL,
    version            bigint NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, carrier)
);
