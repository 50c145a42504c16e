-- The readers' notices (sync/hub/notice): one per order, kind and channel
-- (key), the pending and sending ones indexed for the sender.
CREATE TABLE notices (
	id      bigint PRIMARY KEY,
	key     text   NOT NULL UNIQUE,
	ord     text   NOT NULL,
	pending boolean NOT NULL,
	doc     json   NOT NULL
);
CREATE INDEX notices_pending ON notices (id) WHERE pending;
CREATE INDEX notices_order ON notices (ord, id);
