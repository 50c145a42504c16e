//go:build lockerd_schema3

package boltstore

// A test build of the next schema: `go build -tags lockerd_schema3`
// makes a lockerd that writes schema 3 (probeSchema) and runs on schema 2
// stores while on probation. The update tests run it against schema 2
// builds. Release builds never carry this tag.
func init() { migrations = append(migrations, probeSchema) }
