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

// Globals takes the flags defined in global (-api, -hub, ...) out of args,
// wherever they stand — before the subcommand, after it, among its own
// flags — sets them, and returns the other arguments in order. So
// "lockerhub -hub ADDR lockers" and "lockerhub lockers -hub ADDR" are the
// same. "--" ends the search; what follows it is returned as is.
func Globals(global *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), nil
		}
		name, value, hasValue := flagName(a)
		f := global.Lookup(name)
		if name == "" || f == nil {
			rest = append(rest, a)
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := global.Set(name, value); err != nil {
			return nil, fmt.Errorf("flag -%s: %w", name, err)
		}
	}
	return rest, nil
}

// flagName splits "-name", "--name" or "--name=value"; name is "" for an
// argument that is not a flag.
func flagName(a string) (name, value string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", "", false
	}
	a = strings.TrimPrefix(a[1:], "-")
	if a == "" || a[0] == '-' || a[0] == '=' {
		return "", "", false
	}
	name, value, hasValue = strings.Cut(a, "=")
	return name, value, hasValue
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
