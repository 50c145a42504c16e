package gpiohw

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"
)

// PinMap resolves names to periph pins held in a map — periph's
// gpiotest.Pin in tests and tools. Requesting an output writes its first
// level at once: for a pin that is already an output that is the whole
// request, and no other level is ever written first.
type PinMap map[string]gpio.PinIO

// Output implements Pins.
func (m PinMap) Output(name string, initial gpio.Level) (OutputLine, error) {
	p, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no pin %s", name)
	}
	if err := p.Out(initial); err != nil {
		return nil, err
	}
	return p, nil
}

// Input implements Pins.
func (m PinMap) Input(name string, pull gpio.Pull) (InputLine, error) {
	p, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no pin %s", name)
	}
	if err := p.In(pull, gpio.BothEdges); err != nil {
		return nil, err
	}
	return p, nil
}

// Close implements Pins.
func (m PinMap) Close() error { return nil }
