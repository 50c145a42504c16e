// Package stock owns the library's stock for this service: the books it
// keeps apart for ordering to a locker (Ningbo's is about 12,000, chosen
// from bestseller lists), imported from a CSV list (barcode, title,
// author, ISBN, cover URL) as a whole — a list with a broken row imports
// nothing and says FILE:LINE: field: what for every row — and searched by
// title, author or ISBN, Chinese text included. It declares the part of a
// store it needs (Tx).
package stock
