// Package pinname owns the grammar of the pin names a technician writes in
// the config (locks, sensors, signal outputs), for every hardware backend:
//
//	GPIO17, 17             a line of the Pi's own GPIO chip, as the kernel names it
//	mcp23017@0x20/A3       pin A3 of an MCP23017 expander at 0x20 on hardware.i2c_bus
//	mcp23017@3:0x20/B7     the same on /dev/i2c-3
//	pcf8574@0x21/P5        pin P5 of a PCF8574 expander
//	B1/L5, B1/S5, B1/I5    lock-control board 1: lock 5, its lock-hook (door)
//	                       feedback, its item-present sensor
//
// The config validates names with it, the drivers resolve them with it, so
// a name that passes validation is one the drivers understand.
package pinname
