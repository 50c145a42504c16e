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
//
// The expanders are driven here on periph.io/x/conn/v3's i2c rather than
// with periph.io/x/devices/v3's mcp23xxx and pcf857x, because both of
// those show an unlocked level when a lock line is first set up (checked
// against v3.7.4 on a register model of each chip): mcp23xxx's Out
// switches IODIR to output before it writes OLAT, so a pin with OLAT at
// its power-on 0 is driven low — energising an active-low relay — for one
// I2C transaction; pcf857x keeps a software copy of the port that starts
// at 0, not the chip's power-on 0xFF, so the first Out on one pin drives
// every other pin of the chip low and holds it there. Here the MCP23017's
// latch is written before its direction, and the PCF8574's port copy
// starts at its power-on level.
package gpiohw
