-- lockerhub's store on PostgreSQL, version 1: the records of sync/hub's
-- Store, each as its JSON (type json keeps the bytes as written), keyed
-- the way the hub reads them.

CREATE TABLE lockers (
	id  text PRIMARY KEY,
	doc json NOT NULL
);

CREATE TABLE known_lockers (
	id  text PRIMARY KEY,
	doc json NOT NULL
);

CREATE TABLE stores (
	locker text NOT NULL,
	store  text NOT NULL,
	doc    json NOT NULL,
	PRIMARY KEY (locker, store)
);

-- One row per locker event: (locker, epoch of its store, seq) and its id
-- are both unique, so a replica storing an event another already stored
-- finds it and adds nothing.
CREATE TABLE events (
	locker text    NOT NULL,
	epoch  integer NOT NULL,
	seq    bigint  NOT NULL,
	id     text    NOT NULL UNIQUE,
	doc    json    NOT NULL,
	PRIMARY KEY (locker, epoch, seq)
);

CREATE TABLE orders (
	locker text   NOT NULL,
	id     text   NOT NULL,
	rev    bigint NOT NULL,
	doc    json   NOT NULL,
	PRIMARY KEY (locker, id)
);
CREATE INDEX orders_by_rev ON orders (locker, rev);

-- The last order rev issued to each locker; taken in the transaction that
-- makes the change (serializable), so no two changes share a rev.
CREATE TABLE order_revs (
	locker text   PRIMARY KEY,
	rev    bigint NOT NULL
);

CREATE TABLE pending (
	locker text    NOT NULL,
	rev    bigint  NOT NULL,
	part   integer NOT NULL,
	doc    json    NOT NULL,
	PRIMARY KEY (locker, rev, part)
);

CREATE TABLE commands (
	id     text PRIMARY KEY,
	locker text NOT NULL,
	doc    json NOT NULL
);

CREATE TABLE alarms (
	seq bigint PRIMARY KEY,
	doc json   NOT NULL
);

-- Gapless numbers (alarms): a sequence would leave gaps on rollback and
-- hand out numbers out of commit order.
CREATE TABLE counters (
	name  text   PRIMARY KEY,
	value bigint NOT NULL
);

-- Work that one replica does at a time: who holds it, until when (the
-- database's clock, so replicas' clocks do not matter).
CREATE TABLE leases (
	name    text        PRIMARY KEY,
	holder  text        NOT NULL,
	expires timestamptz NOT NULL
);
