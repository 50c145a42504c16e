package backend

import (
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/drivers/gpiohw"
	"github.com/lockerd/lockerd/drivers/gpiohw/gpiohwtest"
)

// The shipped 16-door Pi config, opened on periph's fake pins and a fake
// MCP23017: every lock comes up locked (as its first level), a door's
// edge reaches the core's input stream, a pulse goes to the right relay.
func TestPi16DoorConfigOnFakePins(t *testing.T) {
	raw, err := os.ReadFile("../../../configs/pi-16door.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("pi-16door.yaml", raw, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range []int{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26} {
		names = append(names, "GPIO"+strconv.Itoa(n))
	}
	fake := gpiohwtest.Pins(names...)
	lines := gpiohw.PinMap{}
	for n, p := range fake {
		lines[n] = p
	}
	chip := gpiohwtest.NewMCP23017(0x20)
	pins := &gpiohw.Resolver{Lines: lines, Expanders: &gpiohw.Expanders{
		OpenBus: func(n int) (i2c.Bus, error) {
			if n != 1 {
				t.Errorf("bus %d opened, config says i2c_bus 1", n)
			}
			return chip, nil
		}, DefaultBus: cfg.Hardware.I2CBus}}
	cab, err := openGPIO(pins, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cab.Close()
	for i := range 16 {
		if h := chip.History(i); len(h) == 0 || !h[0] {
			t.Fatalf("expander pin %d first showed %v, want high (locked, active-low relay)", i, h)
		}
	}
	if fake["GPIO22"].Read() != gpio.High {
		t.Error("return lock GPIO22 not at its locked level")
	}
	// The pull-ups leave every sensor high: open, with sensor_active_low
	// false. C01's door (GPIO18) closes: its reed switch pulls it low.
	if open, _ := cab.Read("GPIO18"); !open {
		t.Fatal("GPIO18 pulled up but not read open")
	}
	fake["GPIO18"].EdgesChan <- gpio.Low
	select {
	case ch := <-cab.Inputs():
		if ch.Pin != "GPIO18" || ch.Active {
			t.Fatalf("change %+v", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no input change")
	}
	if err := cab.Pulse("mcp23017@0x20/B4", 50*time.Millisecond); err != nil { // C01's lock
		t.Fatal(err)
	}
	if h := chip.History(12); len(h) < 3 || h[len(h)-2] || !h[len(h)-1] {
		t.Fatalf("C01's relay (B4) levels %v: want a low pulse ending high", h)
	}
}
