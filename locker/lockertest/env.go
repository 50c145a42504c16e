package lockertest

import (
	"os"
	"strconv"
)

// EnvInt is a test's size from the environment variable name (make
// torture sets them), or def when it is unset or not a positive number.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
