package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
	"go.bug.st/serial/enumerator"
)

func TestLabels(t *testing.T) {
	cfg := cabinetFile(t, "  backend: sim",
		"  - {id: A01, size: S, lock: GPIO4, sensor: GPIO17}\n  - {id: A02, size: S, lock: GPIO5, sensor: GPIO18}\n"+
			"  - {id: B01, size: M, lock: GPIO6, sensor: GPIO22}\n  - {id: C01, size: L, lock: GPIO7, sensor: GPIO23}", "  []")
	dir := t.TempDir()
	pngFile := filepath.Join(dir, "labels.png")
	out, errw, code := ctl(t, "-config", cfg, "labels", "-o", pngFile)
	if code != 0 || !strings.Contains(out, "4 labels for locker nb-test-01") {
		t.Fatalf("exit %d: %s%s", code, out, errw)
	}
	raw, _ := os.ReadFile(pngFile)
	sheet, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := sheet.Bounds(); b.Dx() != labelGap+3*(labelW+labelGap) || b.Dy() != labelGap+2*(labelH+labelGap) {
		t.Fatalf("sheet %v: want 3 columns by 2 rows", b)
	}
	// Label 4 (C01) carries exactly the QR code of nb-test-01/C01.
	qr, _ := qrcode.New("nb-test-01/C01", qrcode.Medium)
	want := qr.Image(labelQR)
	at := labelOrigin(3).Add(image.Pt(20, (labelH-labelQR)/2))
	for y := 0; y < labelQR; y++ {
		for x := 0; x < labelQR; x++ {
			g := color.GrayModel.Convert(sheet.At(at.X+x, at.Y+y)).(color.Gray).Y
			w := color.GrayModel.Convert(want.At(x, y)).(color.Gray).Y
			if (g < 128) != (w < 128) {
				t.Fatalf("QR of C01 differs at (%d,%d)", x, y)
			}
		}
	}

	pdfFile := filepath.Join(dir, "labels.pdf")
	if _, errw, code := ctl(t, "-config", cfg, "labels", "-o", pdfFile); code != 0 {
		t.Fatalf("pdf: %s", errw)
	}
	pdf, _ := os.ReadFile(pdfFile)
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || bytes.Count(pdf, []byte("/Subtype /Image")) != 4 {
		t.Fatalf("pdf: %d bytes, %d images", len(pdf), bytes.Count(pdf, []byte("/Subtype /Image")))
	}
	if _, _, code := ctl(t, "-config", cfg, "labels", "-o", filepath.Join(dir, "x.gif")); code != 1 {
		t.Error("unknown format accepted")
	}
}

func TestPortsListing(t *testing.T) {
	var out bytes.Buffer
	writePorts(&out, []*enumerator.PortDetails{
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "A10K1234", Product: "FT232R USB UART"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "1eab", PID: "1a03", Product: "Barcode Scanner"},
		{Name: "/dev/ttyAMA0"},
	}, []string{"/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"},
		[]string{"/dev/input/by-id/usb-Scanner-event-kbd"},
		func(l string) (string, error) { return "/dev/ttyUSB0", nil })
	for _, want := range []string{"/dev/ttyACM0  1eab:1a03", "/dev/ttyUSB0  0403:6001  A10K1234", "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0",
		"/dev/ttyAMA0  -", "keyboard-wedge devices", "usb-Scanner-event-kbd"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, out.String())
		}
	}
	if _, errw, code := ctl(t, "ports"); code != 0 {
		t.Fatalf("ports on this machine: %s", errw)
	}
}
