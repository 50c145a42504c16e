-- The SIP2 bridge's queue: one row per transaction for the library's
-- system, numbered gaplessly in the order queued (counters, as alarms).
-- open marks those still queued or sending, or waiting for a person
-- (refused, exception): the bridge and the staff list read only those.
CREATE TABLE circulation (
	id   bigint  PRIMARY KEY,
	open boolean NOT NULL,
	doc  json    NOT NULL
);
CREATE INDEX circulation_open ON circulation (id) WHERE open;
