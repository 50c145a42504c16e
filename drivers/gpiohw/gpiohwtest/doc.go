// Package gpiohwtest holds fakes of the hardware gpiohw drives, for tests
// and tools (as periph's gpiotest does for pins): an MCP23017's register
// file on a fake I2C bus, and banks of periph gpiotest pins.
package gpiohwtest
