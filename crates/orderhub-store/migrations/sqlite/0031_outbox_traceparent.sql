-- Issue 24: the W3C trace context (`traceparent`) of the write that raised an event, so the relay,
-- NATS and the webhook delivery continue its trace. NULL when traces are off (nothing is written).
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
