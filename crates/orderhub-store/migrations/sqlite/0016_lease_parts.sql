-- Issue 27: a dispatcher on NATS reads each stream partition with an ordered consumer of its own
-- and keeps, per partition, the stream sequence up to which every event is done ("12,0,57,3");
-- the next lease holder starts each partition after it. Empty for every other lease.
ALTER TABLE leases ADD COLUMN parts TEXT NOT NULL DEFAULT '';
