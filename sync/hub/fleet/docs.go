package fleet

import (
	"encoding/json"
	"fmt"
)

// Kinds of the fleet's documents (Docs.PutDoc). A kind is also the name of
// its bbolt bucket ("doc:" + kind) and of its rows in PostgreSQL's docs.
const (
	DocProvision  = "provision"  // provisioning tokens, by token id
	DocCredential = "credential" // lockers' broker credentials, by locker id
	DocRevoked    = "revoked"    // revoked client certificates, by serial
)

// DocKinds lists every kind, for copying a store into another.
var DocKinds = []string{DocProvision, DocCredential, DocRevoked}

// docsOf decodes a kind's documents.
func docsOf[T any](docs Docs, kind string) ([]T, error) {
	raws, err := docs.Docs(kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(raws))
	for _, raw := range raws {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s document: %w", kind, err)
		}
		out = append(out, v)
	}
	return out, nil
}
