-- Webhook subscriptions and their delivery queue: one row per event per
-- subscription, numbered gaplessly; pending marks those still to deliver.
CREATE TABLE webhooks (
	id  text PRIMARY KEY,
	doc json NOT NULL
);

CREATE TABLE deliveries (
	id      bigint  PRIMARY KEY,
	pending boolean NOT NULL,
	doc     json    NOT NULL
);
CREATE INDEX deliveries_pending ON deliveries (id) WHERE pending;
