-- The library's stock for this service (sync/hub/stock), replaced whole by
-- each list imported.
CREATE TABLE stock (
	barcode text PRIMARY KEY COLLATE "C",
	doc     json NOT NULL
);
