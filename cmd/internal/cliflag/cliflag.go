// Package cliflag holds the command-line helpers lockerctl and lockerhub
// share: flags that may follow positional arguments, and the repeatable
// --item BARCODE[:TITLE] flag.
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/lockerd/lockerd/locker"
)

// Parse parses fs's flags wherever they stand among args and returns the
// positional arguments in order ("open A01 --reason x" and
// "open --reason x A01" are the same).
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if args = fs.Args(); len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// Items is a repeatable flag of BARCODE[:TITLE].
type Items []locker.Item

func (it *Items) String() string { return fmt.Sprint(*it) }

// Set adds one item.
func (it *Items) Set(s string) error {
	bc, title, _ := strings.Cut(s, ":")
	if bc == "" {
		return errors.New("want BARCODE[:TITLE]")
	}
	*it = append(*it, locker.Item{Barcode: bc, Title: title})
	return nil
}
