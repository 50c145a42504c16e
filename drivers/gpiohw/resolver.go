package gpiohw

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"

	"github.com/lockerd/lockerd/drivers/pinname"
)

// Resolver resolves config pin names: chip lines (GPIO17, 17) through
// Lines, expander pins (mcp23017@0x20/A3) through Expanders.
type Resolver struct {
	Lines     Pins
	Expanders *Expanders
}

var _ Pins = (*Resolver)(nil)

func (r *Resolver) parse(name string) (pinname.Pin, error) {
	p, err := pinname.Parse(name)
	if err != nil {
		return p, err
	}
	switch p.Kind {
	case pinname.Line:
		if r.Lines == nil {
			return p, fmt.Errorf("%s: no GPIO chip", name)
		}
	case pinname.MCP23017, pinname.PCF8574:
		if r.Expanders == nil {
			return p, fmt.Errorf("%s: no I2C expanders configured", name)
		}
	default:
		return p, fmt.Errorf("%s is a lock-board channel, not a GPIO pin", name)
	}
	return p, nil
}

// Output implements Pins.
func (r *Resolver) Output(name string, initial gpio.Level) (OutputLine, error) {
	p, err := r.parse(name)
	if err != nil {
		return nil, err
	}
	if p.Kind == pinname.Line {
		return r.Lines.Output(p.Line, initial)
	}
	return r.Expanders.Output(p, name, initial)
}

// Input implements Pins.
func (r *Resolver) Input(name string, pull gpio.Pull) (InputLine, error) {
	p, err := r.parse(name)
	if err != nil {
		return nil, err
	}
	if p.Kind == pinname.Line {
		return r.Lines.Input(p.Line, pull)
	}
	return r.Expanders.Input(p, name, pull)
}

// Close implements Pins.
func (r *Resolver) Close() error {
	var errs []error
	if r.Lines != nil {
		errs = append(errs, r.Lines.Close())
	}
	if r.Expanders != nil {
		errs = append(errs, r.Expanders.Close())
	}
	return errors.Join(errs...)
}
