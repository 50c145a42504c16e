// Package cliflag holds the command-line helpers lockerctl and lockerhub
// share: global flags that may stand before or after the subcommand, flags
// that may follow positional arguments, and the repeatable
// --item BARCODE[:TITLE] flag.
package cliflag
