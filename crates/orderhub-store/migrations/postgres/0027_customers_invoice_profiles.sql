-- Customers and their invoice profiles (issue 23). A customer owns the invoice profiles orders
-- take at creation; channel buyer ids link a channel's buyer to it. Names and every profile's
-- content (title, tax id, bank, address, phone) are sealed by the application (personal-data
-- cipher): a sole trader's profile names a person. Buyer ids are the channels' pseudonymous ids,
-- kept in clear to be looked up when an order arrives.
CREATE TABLE customers (
    tenant_id    text NOT NULL,
    customer_id  uuid NOT NULL,
    name         text NOT NULL,
    created      text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
-- One customer per (channel, buyer id): the lookup of every order created with a buyer id.
CREATE TABLE customer_buyers (
    tenant_id    text NOT NULL,
    channel      text NOT NULL,
    buyer_id     text NOT NULL,
    customer_id  uuid NOT NULL,
    linked       text NOT NULL,
    PRIMARY KEY (tenant_id, channel, buyer_id)
);
CREATE INDEX customer_buyers_by_customer ON customer_buyers (tenant_id, customer_id);
-- Every version of every profile is a row, never updated (a change, or a deactivation, is the
-- next version); `who` is the key, actor and request that wrote it.
CREATE TABLE invoice_profiles (
    tenant_id    text NOT NULL,
    profile_id   uuid NOT NULL,
    version      integer NOT NULL,
    customer_id  uuid NOT NULL,
    active       boolean NOT NULL,
    is_default   boolean NOT NULL,
    expires_at   timestamptz,
    content      text NOT NULL,
    who          text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, profile_id, version)
);
-- A customer's profiles, for the creation path (each one's latest version).
CREATE INDEX invoice_profiles_by_customer ON invoice_profiles (tenant_id, customer_id, profile_id);
