package gpiohw

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/host/v3/gpioioctl"
	"periph.io/x/host/v3/sysfs"
)

// Chardev is the Pi's own GPIO through the kernel's character device
// (/dev/gpiochip*), found by periph's gpioioctl driver. Inputs are
// periph's lines. Outputs are requested here with the kernel's
// OUTPUT_VALUES attribute, so the line's first level is the one asked
// for: periph's GPIOLine.Out requests the line as an output first and
// writes the level after, which on an active-low relay board shows the
// unlocked level for the time in between.
type Chardev struct {
	mu   sync.Mutex
	outs []*chardevOutput
	ins  []*gpioioctl.GPIOLine
}

var initOnce sync.Once

// OpenChardev finds the GPIO chips. It fails if there are none.
func OpenChardev() (*Chardev, error) {
	initOnce.Do(func() { _, _ = driverreg.Init() })
	if len(gpioioctl.Chips) == 0 {
		return nil, errors.New("no GPIO chips found (/dev/gpiochip*): not a Pi, or the user is not in the gpio group")
	}
	return &Chardev{}, nil
}

// chipsFound describes the chips for an error message.
func chipsFound() string {
	var s []string
	for _, c := range gpioioctl.Chips {
		s = append(s, fmt.Sprintf("%s [%s, %d lines]", c.Name(), c.Label(), c.LineCount()))
	}
	return strings.Join(s, ", ")
}

func findLine(name string) (*gpioioctl.GPIOChip, *gpioioctl.GPIOLine, error) {
	for _, c := range gpioioctl.Chips {
		if l := c.ByName(name); l != nil {
			return c, l, nil
		}
	}
	return nil, nil, fmt.Errorf("no GPIO line %s on this board; chips found: %s", name, chipsFound())
}

// Output implements Pins.
func (c *Chardev) Output(name string, initial gpio.Level) (OutputLine, error) {
	chip, line, err := findLine(name)
	if err != nil {
		return nil, err
	}
	o, err := requestOutput(chip.Path(), uint32(line.Number()), initial)
	if err != nil {
		return nil, fmt.Errorf("%s (%s line %d): %w", name, chip.Name(), line.Number(), err)
	}
	c.mu.Lock()
	c.outs = append(c.outs, o)
	c.mu.Unlock()
	return o, nil
}

// Input implements Pins.
func (c *Chardev) Input(name string, pull gpio.Pull) (InputLine, error) {
	_, line, err := findLine(name)
	if err != nil {
		return nil, err
	}
	if err := line.In(pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.mu.Lock()
	c.ins = append(c.ins, line)
	c.mu.Unlock()
	return line, nil
}

// Close releases every line requested.
func (c *Chardev) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, o := range c.outs {
		errs = append(errs, o.close())
	}
	for _, l := range c.ins {
		l.Close()
	}
	c.outs, c.ins = nil, nil
	return errors.Join(errs...)
}

// OpenI2C opens /dev/i2c-N through periph's sysfs I2C driver.
func OpenI2C(n int) (i2c.Bus, error) { return sysfs.NewI2C(n) }

// The kernel's GPIO v2 uAPI (include/uapi/linux/gpio.h), as much of it as
// requesting one output line with an initial value needs.
const (
	gpioV2LineFlagOutput       = 1 << 3
	gpioV2LineAttrOutputValues = 2
	gpioV2LinesMax             = 64
	gpioV2LineNumAttrsMax      = 10
)

type gpioV2LineAttribute struct {
	id      uint32
	padding uint32
	value   uint64 // flags, values or debounce_period_us
}

type gpioV2LineConfigAttribute struct {
	attr gpioV2LineAttribute
	mask uint64
}

type gpioV2LineConfig struct {
	flags    uint64
	numAttrs uint32
	padding  [5]uint32
	attrs    [gpioV2LineNumAttrsMax]gpioV2LineConfigAttribute
}

type gpioV2LineRequest struct {
	offsets         [gpioV2LinesMax]uint32
	consumer        [32]byte
	config          gpioV2LineConfig
	numLines        uint32
	eventBufferSize uint32
	padding         [5]uint32
	fd              int32
}

type gpioV2LineValues struct {
	bits uint64
	mask uint64
}

func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 0xB4<<8 | nr }

var (
	gpioV2GetLineIoctl       = iowr(0x07, unsafe.Sizeof(gpioV2LineRequest{}))
	gpioV2LineSetValuesIoctl = iowr(0x0F, unsafe.Sizeof(gpioV2LineValues{}))
)

// outputRequest builds the request for one output line whose first level
// is initial.
func outputRequest(offset uint32, initial gpio.Level) *gpioV2LineRequest {
	var req gpioV2LineRequest
	req.offsets[0] = offset
	req.numLines = 1
	copy(req.consumer[:len(req.consumer)-1], "lockerd")
	req.config.flags = gpioV2LineFlagOutput
	req.config.numAttrs = 1
	req.config.attrs[0].mask = 1
	req.config.attrs[0].attr.id = gpioV2LineAttrOutputValues
	if initial {
		req.config.attrs[0].attr.value = 1
	}
	return &req
}

type chardevOutput struct {
	mu sync.Mutex
	fd int
}

func requestOutput(chipPath string, offset uint32, initial gpio.Level) (*chardevOutput, error) {
	chip, err := os.OpenFile(chipPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer chip.Close()
	req := outputRequest(offset, initial)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, chip.Fd(), gpioV2GetLineIoctl, uintptr(unsafe.Pointer(req))); errno != 0 {
		return nil, fmt.Errorf("line request: %w (in use by another program? see gpioinfo)", errno)
	}
	return &chardevOutput{fd: int(req.fd)}, nil
}

func (o *chardevOutput) Out(l gpio.Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return errors.New("line released")
	}
	v := gpioV2LineValues{mask: 1}
	if l {
		v.bits = 1
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(o.fd), gpioV2LineSetValuesIoctl, uintptr(unsafe.Pointer(&v))); errno != 0 {
		return fmt.Errorf("set line value: %w", errno)
	}
	return nil
}

func (o *chardevOutput) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return nil
	}
	err := unix.Close(o.fd)
	o.fd = -1
	return err
}
