//go:build !linux

package gpiohw

import (
	"errors"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
)

// Chardev needs Linux's GPIO character device.
type Chardev struct{}

// OpenChardev fails off Linux.
func OpenChardev() (*Chardev, error) { return nil, errors.New("GPIO needs Linux") }

func (c *Chardev) Output(string, gpio.Level) (OutputLine, error) {
	return nil, errors.New("GPIO needs Linux")
}
func (c *Chardev) Input(string, gpio.Pull) (InputLine, error) {
	return nil, errors.New("GPIO needs Linux")
}
func (c *Chardev) Close() error { return nil }

// OpenI2C fails off Linux.
func OpenI2C(int) (i2c.Bus, error) { return nil, errors.New("I2C needs Linux") }
