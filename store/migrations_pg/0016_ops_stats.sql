-- The metrics endpoint counts failed webhook deliveries and finds the
-- oldest at every scrape: this keeps that an index lookup.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries(created_at) WHERE status = 'failed';
