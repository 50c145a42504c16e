// Package orderpage is the reader's page of an order, served by lockerhub
// at /o/TOKEN and reached from the notice's link: the order's state (on
// its way, ready in locker X door Y, picked up, returned, expired,
// cancelled), the QR code to scan at the locker, the locker's place and
// hours, the last day, and two actions — keep it longer (once) and cancel
// — each audited and sent to the locker as a signed order change.
//
// The token is the order's locker and id and an expiry, MACed with the
// page key: unguessable, checked without a store read, and useless after
// it expires. The page makes no external request (inline style, the QR
// code as a data: image), tells the browser to send no referrer (the
// token is in the URL) and keep nothing, and works in Chinese and English
// (WeChat's in-app browser included: plain HTML forms, no script).
package orderpage
