-- API tokens (their secrets only as hashes) and the audit log of every
-- state-changing request and console action, numbered gaplessly.
CREATE TABLE tokens (
	id  text PRIMARY KEY,
	doc json NOT NULL
);

CREATE TABLE audit (
	seq bigint PRIMARY KEY,
	doc json   NOT NULL
);
