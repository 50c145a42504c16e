package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-pdf/fpdf"
	"github.com/skip2/go-qrcode"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
)

// Label geometry of the PNG sheet, in pixels at 300 dpi: 50 × 25 mm labels.
const (
	labelW, labelH = 590, 295
	labelQR        = 255
	labelCols      = 3
	labelGap       = 20
)

// labelContent is what a compartment's QR code says.
func labelContent(lockerID, compartment string) string { return lockerID + "/" + compartment }

// labels writes one label per compartment: its id in large type and a QR
// code of LOCKER/COMPARTMENT, for couriers' and staff's scanners.
func labels(cfgFile string, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("labels", flag.ContinueOnError)
	fs.SetOutput(errw)
	outFile := fs.String("o", "labels.png", "output file: .png (one sheet) or .pdf (A4 pages)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return 2
	}
	if cfgFile == "" {
		fmt.Fprintln(errw, "lockerctl labels: want -config FILE")
		return 2
	}
	cfg, err := loadWiring(cfgFile)
	if err != nil {
		fmt.Fprintln(errw, err)
		return 2
	}
	var ids []string
	for _, c := range cfg.Compartments {
		ids = append(ids, c.ID)
	}
	var data []byte
	switch strings.ToLower(filepath.Ext(*outFile)) {
	case ".png":
		data, err = labelSheetPNG(cfg.Locker.ID, ids)
	case ".pdf":
		data, err = labelsPDF(cfg.Locker.ID, ids)
	default:
		err = errors.New("-o must end in .png or .pdf")
	}
	if err == nil {
		err = os.WriteFile(*outFile, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(errw, "lockerctl labels: %v\n", err)
		return 1
	}
	fmt.Fprintf(out, "%s: %d labels for locker %s\n", *outFile, len(ids), cfg.Locker.ID)
	return 0
}

func face(ttf []byte, size float64) (font.Face, error) {
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, err
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
}

// labelOrigin is the top-left corner of label i on the sheet.
func labelOrigin(i int) image.Point {
	return image.Pt(labelGap+(i%labelCols)*(labelW+labelGap), labelGap+(i/labelCols)*(labelH+labelGap))
}

func labelSheetPNG(lockerID string, ids []string) ([]byte, error) {
	rows := (len(ids) + labelCols - 1) / labelCols
	sheet := image.NewRGBA(image.Rect(0, 0, labelGap+labelCols*(labelW+labelGap), labelGap+rows*(labelH+labelGap)))
	draw.Draw(sheet, sheet.Bounds(), image.White, image.Point{}, draw.Src)
	big, err := face(gobold.TTF, 120)
	if err != nil {
		return nil, err
	}
	small, err := face(goregular.TTF, 26)
	if err != nil {
		return nil, err
	}
	grey := image.NewUniform(color.Gray{Y: 0x99})
	for i, id := range ids {
		o := labelOrigin(i)
		// Cut line.
		r := image.Rect(o.X, o.Y, o.X+labelW, o.Y+labelH)
		for x := r.Min.X; x < r.Max.X; x += 6 {
			sheet.Set(x, r.Min.Y, grey)
			sheet.Set(x, r.Max.Y-1, grey)
		}
		for y := r.Min.Y; y < r.Max.Y; y += 6 {
			sheet.Set(r.Min.X, y, grey)
			sheet.Set(r.Max.X-1, y, grey)
		}
		qr, err := qrcode.New(labelContent(lockerID, id), qrcode.Medium)
		if err != nil {
			return nil, err
		}
		img := qr.Image(labelQR)
		at := o.Add(image.Pt(20, (labelH-labelQR)/2))
		draw.Draw(sheet, image.Rect(at.X, at.Y, at.X+labelQR, at.Y+labelQR), img, image.Point{}, draw.Src)
		text := func(f font.Face, s string, x, y int) {
			d := font.Drawer{Dst: sheet, Src: image.Black, Face: f, Dot: fixed.P(x, y)}
			d.DrawString(s)
		}
		tx := at.X + labelQR + 10
		text(big, id, tx, o.Y+labelH/2+40)
		text(small, lockerID, tx, o.Y+labelH-40)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// labelsPDF lays 50 × 25 mm labels out on A4 pages, 3 by 10.
func labelsPDF(lockerID string, ids []string) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetAutoPageBreak(false, 0)
	const w, h, gap, perPage = 50.0, 25.0, 8.0, 30
	for i, id := range ids {
		if i%perPage == 0 {
			pdf.AddPage()
		}
		k := i % perPage
		x, y := 15+float64(k%3)*(w+gap), 12+float64(k/3)*(h+3)
		pdf.SetDrawColor(160, 160, 160)
		pdf.Rect(x, y, w, h, "D")
		png, err := qrcode.Encode(labelContent(lockerID, id), qrcode.Medium, 256)
		if err != nil {
			return nil, err
		}
		name := "qr-" + id
		pdf.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: "PNG"}, bytes.NewReader(png))
		pdf.ImageOptions(name, x+1.5, y+1.5, h-3, h-3, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
		pdf.SetFont("Helvetica", "B", 26)
		pdf.Text(x+h, y+h/2+3, id)
		pdf.SetFont("Helvetica", "", 7)
		pdf.Text(x+h, y+h-3, lockerID)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadWiring loads a config for the cabinet's wiring and ids only: the
// key files it names need not be on this machine (a technician may make
// labels or test wiring before the keys are installed).
func loadWiring(path string) (*config.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return config.Parse(path, raw, false)
}
