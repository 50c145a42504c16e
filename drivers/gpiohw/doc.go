// Package gpiohw drives a cabinet wired to GPIO lines: lock relays on
// outputs that are only ever pulsed, door and bin-full sensors on inputs
// with both-edge detection, software debounce and a periodic re-read. It
// implements locker.Hardware.
//
// Lines come from a Pins resolver: Chardev (linux) opens the Pi's GPIO
// chips through the kernel's character device (periph.io/x/host/v3
// gpioioctl) and MCP23017 / PCF8574 expanders on I2C; PinMap wraps any
// periph gpio.PinIO, which is how tests and tools use periph's gpiotest
// fakes.
package gpiohw
