-- The fleet's records (provisioning tokens, lockers' broker credentials,
-- configurations, releases, rollouts): JSON documents by kind and id.
CREATE TABLE docs (
	kind text NOT NULL,
	id   text NOT NULL,
	doc  json NOT NULL,
	PRIMARY KEY (kind, id)
);
