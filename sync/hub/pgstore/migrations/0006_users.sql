-- The console's users (their passwords as argon2id hashes).
CREATE TABLE users (
	name text PRIMARY KEY,
	doc  json NOT NULL
);
