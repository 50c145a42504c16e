//go:build linux

package gpiohw

import (
	"strings"
	"testing"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
)

// The request must match the kernel's ABI byte for byte: sizes from
// include/uapi/linux/gpio.h, ioctl numbers as the kernel computes them.
func TestChardevABI(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct gpio_v2_line_attribute)", unsafe.Sizeof(gpioV2LineAttribute{}), 16},
		{"sizeof(struct gpio_v2_line_config_attribute)", unsafe.Sizeof(gpioV2LineConfigAttribute{}), 24},
		{"sizeof(struct gpio_v2_line_config)", unsafe.Sizeof(gpioV2LineConfig{}), 272},
		{"sizeof(struct gpio_v2_line_request)", unsafe.Sizeof(gpioV2LineRequest{}), 592},
		{"offsetof(gpio_v2_line_request, config)", unsafe.Offsetof(gpioV2LineRequest{}.config), 288},
		{"offsetof(gpio_v2_line_request, fd)", unsafe.Offsetof(gpioV2LineRequest{}.fd), 588},
		{"GPIO_V2_GET_LINE_IOCTL", gpioV2GetLineIoctl, 0xC250B407},
		{"GPIO_V2_LINE_SET_VALUES_IOCTL", gpioV2LineSetValuesIoctl, 0xC010B40F},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

// The output request carries the initial level: the kernel drives it
// from the moment the line becomes an output.
func TestOutputRequestCarriesInitialLevel(t *testing.T) {
	for _, l := range []gpio.Level{gpio.High, gpio.Low} {
		r := outputRequest(17, l)
		a := r.config.attrs[0]
		if r.numLines != 1 || r.offsets[0] != 17 || r.config.flags != gpioV2LineFlagOutput || r.config.numAttrs != 1 ||
			a.attr.id != gpioV2LineAttrOutputValues || a.mask != 1 || (a.attr.value == 1) != bool(l) {
			t.Errorf("request for %v: %+v", l, r.config)
		}
	}
}

// Without chips the error says what to check; with chips, a missing line
// names the chips found.
func TestChardevErrorsSayWhy(t *testing.T) {
	c, err := OpenChardev()
	if err != nil {
		if !strings.Contains(err.Error(), "no GPIO chips found") || !strings.Contains(err.Error(), "gpio group") {
			t.Fatalf("error %q does not say why", err)
		}
		return
	}
	defer c.Close()
	_, err = c.Output("GPIO_NO_SUCH_LINE", gpio.High)
	if err == nil || !strings.Contains(err.Error(), "chips found: gpiochip") {
		t.Fatalf("missing line: %v", err)
	}
}
