package lockertest

import "encoding/json"

func fmtValue(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
